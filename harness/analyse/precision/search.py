"""The budgeted precision-plan search: the cheapest plan whose AP drop stays within a budget.

NNCF's accuracy-aware quantization in spirit: a maximum drop, a validation function, candidates tried
cheapest first and a stop as soon as no remaining candidate can win. The loop here knows nothing of
TensorFlow or COCO: it asks a `Trials` object to build, price and score each proposed plan, so the logic
is tested with synthetic trials (tests/test_quant_search.py) and run for real by
harness.analyse.precision.trials.

Per candidate, cheapest step first:
1. build (convert; a failure is recorded, the search goes on);
2. price on the target (measured p50 for `cpu`, Vela's estimate for an Ethos-U board, the modelled NPU's
   figure otherwise) and size: a plan the target
   cannot run (too many ops left to the CPU) is skipped, and so is one that costs no less than the best
   plan already within budget: it cannot win;
3. screen: AP on the first `screen_images` validation images; a drop beyond the budget plus a margin
   (for the subset's sampling noise) ends the candidate there;
4. AP on the selection images (the first `select_images` validation images, or all); within budget and
   cheaper than the best so far, it becomes the best.
The chosen plan won because its AP on the selection images was high, so that AP flatters it (the winner's
curse): with a selection part, `held_out` scores the chosen plan and float on the validation images after
it, which chose nothing, and that is the AP and ΔAP to report.
Reference plans (float32, full int8, 16x8) are scored on the whole validation set even when they cannot
win or fail the screen, so the table and the trade-off plot have them as reference points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.errors import HarnessError
from harness.quantize.cost import Price
from harness.quantize.plan import Plan


@dataclass
class Candidate:
    """One plan tried, and what it measured (a row of the candidates table)."""

    name: str
    plan: Plan
    reference: str | None = None  # "float32" | "int8" | "int16x8" for the reference plans
    ap: float | None = None
    delta_ap: float | None = None
    p50_ms: float | None = None
    size_bytes: int | None = None
    cost: float | None = None
    cost_detail: dict = field(default_factory=dict)
    meets_budget: bool = False
    status: str = "skipped"  # "measured" | "skipped" | "failed"
    reason: str = ""
    images: int | None = None  # validation images its AP is over
    screen: dict | None = None  # {"images", "ap", "float_ap", "delta_ap"}
    model_path: str | None = None

    def row(self) -> dict:
        return {"name": self.name, "plan": self.plan.to_dict(), "reference": self.reference, "ap": self.ap,
                "delta_ap": self.delta_ap, "p50_ms": self.p50_ms, "size_bytes": self.size_bytes,
                "cost": self.cost, "cost_detail": self.cost_detail, "meets_budget": self.meets_budget,
                "status": self.status, "reason": self.reason, "images": self.images, "screen": self.screen,
                "model_path": self.model_path}


class Trials(Protocol):
    """What the search needs done to a plan; AP in points (x100)."""

    def build(self, plan: Plan) -> Path: ...

    def latency(self, path: Path) -> float | None: ...

    def price(self, plan: Plan, path: Path, p50_ms: float | None) -> Price: ...

    def ap(self, path: Path, images: int | None) -> float: ...

    def held_out_ap(self, path: Path, after: int) -> float: ...


@dataclass(frozen=True)
class Budget:
    """The accuracy budget and how candidates are screened."""

    max_drop: float  # AP points the plan may lose against float
    float_ap: float  # the float model's AP on the whole validation set, points
    screen_images: int | None = None  # None: no screening
    float_screen_ap: float | None = None  # the float model's AP on those images
    screen_margin: float = 3.0  # points of slack for the subset's sampling noise
    select_images: int | None = None  # candidates are judged on the first N validation images (None: all)

    def __post_init__(self) -> None:
        if self.max_drop < 0:
            raise HarnessError("--max-drop is AP points the plan may lose: give a number >= 0")
        if self.screen_images is not None and self.float_screen_ap is None:
            raise HarnessError("screening needs the float model's AP on the screening images")


# A proposer yields the plans to try, in the order of their expected cost, and may look at the
# candidates measured so far (a bisection does) to decide what comes next.
Proposer = Callable[[list[Candidate]], Iterator[tuple[Plan, str | None]]]


def search(proposer: Proposer, trials: Trials, budget: Budget,
           progress: Callable[[Candidate], None] | None = None) -> list[Candidate]:
    """Try the proposed plans (see the module text); every candidate, in the order tried."""
    done: list[Candidate] = []
    for plan, reference in proposer(done):
        cand = Candidate(plan.name, plan, reference)
        done.append(cand)
        try:
            _try(cand, trials, budget, best(done))
        except (RuntimeError, ValueError, OSError) as exc:  # a runtime that cannot run the built model, say
            cand.status, cand.meets_budget = "failed", False
            cand.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if progress:
            progress(cand)
    return done


def best(candidates: list[Candidate]) -> Candidate | None:
    """The cheapest candidate within budget (fewer ops on the CPU, then smaller, break a tie)."""
    ok = [c for c in candidates if c.meets_budget and c.cost is not None]
    return min(ok, key=lambda c: (c.cost, c.size_bytes or 0), default=None)


def closest(candidates: list[Candidate]) -> Candidate | None:
    """Where none is within budget: the candidate the target can run that lost the least AP."""
    ok = [c for c in candidates if c.delta_ap is not None and c.status == "measured"
          and c.cost_detail.get("eligible", True)]
    return max(ok, key=lambda c: (c.delta_ap, -(c.cost or 0)), default=None)


def _try(cand: Candidate, trials: Trials, budget: Budget, leader: Candidate | None) -> None:
    try:
        path = trials.build(cand.plan)
    except HarnessError as exc:
        cand.status, cand.reason = "failed", str(exc)
        return
    cand.model_path = str(path)
    cand.size_bytes = path.stat().st_size
    cand.p50_ms = trials.latency(path)
    price = trials.price(cand.plan, path, cand.p50_ms)
    cand.cost, cand.cost_detail = price.cost, {**price.detail, "eligible": price.eligible}
    if not cand.reference:
        if not price.eligible:
            cand.reason = price.reason
            return
        if leader is not None and price.cost is not None and leader.cost is not None and price.cost >= leader.cost:
            cand.reason = f"cannot win: costs {price.cost:g} >= {leader.cost:g} of {leader.name}, already within budget"
            return
    cand.status = "measured"
    if budget.screen_images is not None:
        ap = trials.ap(path, budget.screen_images)
        assert budget.float_screen_ap is not None  # __post_init__ refuses screening without it
        delta = round(ap - budget.float_screen_ap, 2)
        cand.screen = {"images": budget.screen_images, "ap": ap, "float_ap": budget.float_screen_ap, "delta_ap": delta}
        if delta < -(budget.max_drop + budget.screen_margin) and not cand.reference:
            cand.ap, cand.delta_ap, cand.images = ap, delta, budget.screen_images
            cand.reason = (f"screened out: {delta:+.2f} points on the first {budget.screen_images} validation images, "
                           f"beyond the budget {budget.max_drop:g} + margin {budget.screen_margin:g}")
            return
    cand.ap = trials.ap(path, budget.select_images)
    cand.delta_ap = round(cand.ap - budget.float_ap, 2)
    cand.images = budget.select_images  # None: the whole validation set
    cand.meets_budget = price.eligible and cand.delta_ap >= -budget.max_drop
    if cand.meets_budget:
        cand.reason = f"within budget: {cand.delta_ap:+.2f} points"
    elif not price.eligible:
        cand.reason = f"reference; the target cannot run it: {price.reason}"
    else:
        cand.reason = f"over budget: {cand.delta_ap:+.2f} points"


def held_out(chosen: Candidate | None, float_path: Path, trials: Trials, budget: Budget, n_images: int) -> dict:
    """The chosen plan's AP and ΔAP vs float on the validation images the search did not select on.

    Without a selection part, says plainly that the reported AP is the one the plan was selected on.
    """
    sel = budget.select_images
    if sel is None or sel >= n_images:
        return {"held_out": False, "images": n_images, "ap": chosen.ap if chosen else None,
                "float_ap": budget.float_ap, "delta_ap": chosen.delta_ap if chosen else None,
                "note": f"selected and reported on the same {n_images} images: the chosen plan's AP is flattered "
                        "by its selection (winner's curse)"}
    out = {"held_out": True, "images": n_images - sel, "after": sel, "ap": None, "float_ap": None, "delta_ap": None}
    if chosen is None or chosen.model_path is None:
        return {**out, "note": "no plan chosen: nothing to report on the held-out images"}
    float_ap = trials.held_out_ap(float_path, sel)
    ap = float_ap if chosen.reference == "float32" else trials.held_out_ap(Path(chosen.model_path), sel)
    delta = round(ap - float_ap, 2)
    verdict = "within" if delta >= -budget.max_drop else "beyond"
    return {**out, "ap": ap, "float_ap": float_ap, "delta_ap": delta,
            "note": f"selected on the first {sel} validation images; on the other {n_images - sel}, which chose "
                    f"nothing, {chosen.name} scores AP {ap:.2f} ({delta:+.2f} vs float, {verdict} the budget "
                    f"{budget.max_drop:g})"}


__all__ = ["Budget", "Candidate", "Proposer", "Trials", "best", "closest", "held_out", "search"]

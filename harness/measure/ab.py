"""`harness bench CANDIDATE --baseline BASELINE`: two models (or one under two settings) timed in one run.

Why interleave: on a shared runner a host's speed drifts by tens of percent between runs, and minutes apart the same
model differs more than a real regression does. Here both sides are loaded in one process and alternate in
blocks (each block runs `block_size` invokes of every side; the side that goes first rotates from block to
block, so neither always gets the warmer cache), so whatever the host does during the run hits both alike.

The figure is candidate p50 / baseline p50 over all steady-state samples (model-only: invoke() on one staged
input, as `harness bench`'s model-only phase). Its interval comes from a paired block bootstrap: a resample
draws blocks with replacement and takes *the same* blocks for both sides (harness.scoring.bootstrap's
resample_weights), so a slow spell that hit both sides in one block moves numerator and denominator
together and cancels in the ratio, while the blocks stay the unit of dependence (samples inside a block
share the host's state, so resampling single samples would understate the spread). Percentile interval:
the ratio of medians is not pivotal enough for the "basic" reflection to help. A bootstrap over few units
is known to run narrow; whether 30 blocks (the default) are enough is what the A/A false-alarm rate answers:
benchmarks/gate_noise.py measures it (docs/latency.md renders its artifact).

`--reference` adds the fixed reference model (harness.models.reference) as a third side: candidate /
reference is a speed figure that carries across hosts better than milliseconds, with the same interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import HarnessError
from harness.measure.profiler import Clock, summarize, timed
from harness.scoring.bootstrap import resample_weights

if TYPE_CHECKING:
    from harness.models.backends import BackendOptions
    from harness.models.cards import ModelCard

WHAT = "backend.invoke() on one staged input, sides alternating in blocks"
# The ratios a record carries, when both sides of each are present: numerator / denominator roles.
RATIOS = (("candidate", "baseline"), ("candidate", "reference"), ("baseline", "reference"))


@dataclass(frozen=True)
class ABSettings:
    blocks: int = 30
    block_size: int = 2  # invokes of each side per block: short blocks pair the sides closely in time
    warmup: int = 5  # invokes of each side before the first block
    instances: int = 4  # interpreters loaded per side, taking turns by block (see Side)
    level: float = 0.95
    resamples: int = 2000
    seed: int = 0

    def check(self) -> ABSettings:
        if self.blocks < 4 or self.block_size < 1 or self.warmup < 0 or self.instances < 1:
            raise HarnessError(f"--blocks must be >= 4 (a bootstrap over fewer blocks says little), --block-size "
                               f"and --instances >= 1 and --warmup >= 0; got {self.blocks}, {self.block_size}, "
                               f"{self.instances}, {self.warmup}")
        if not 0 < self.level < 1:
            raise HarnessError(f"--confidence must be between 0 and 1 (e.g. 0.95), got {self.level:g}")
        if self.resamples < 100:
            raise HarnessError(f"the A/B interval needs at least 100 resamples, got {self.resamples}")
        return self


@dataclass
class Side:
    """One thing being timed: its role, the staged invoke() of each loaded instance, and what the record says.

    Why several instances: two interpreters of the *same* model in one process can run apart for a whole
    run, in either direction and in nearly every block (where the buffers landed, not the host's drift),
    each with a tight interval, which no interval over blocks can see. Loading each side several times, in
    alternating order, and letting the instances take turns averages that effect and puts it into the
    block-to-block spread the interval sees, at the price of a wider interval. The default number of
    instances trades A/A false alarms against that width; benchmarks/gate_noise.py (--instances) measures
    both.
    """

    role: str  # candidate | baseline | reference
    invokes: list[Callable[[], object]]
    about: dict


def run_blocks(sides: list[Side], settings: ABSettings, clock: Clock | None = None) -> dict[str, list[list[float]]]:
    """Warm every side up, then `blocks` rounds of `block_size` invokes per side, rotating who goes first.

    Returns each role's samples (seconds) block by block.
    """
    kw = {"clock": clock} if clock else {}
    for side in sides:
        for invoke in side.invokes:
            for _ in range(settings.warmup):
                invoke()
    out: dict[str, list[list[float]]] = {s.role: [] for s in sides}
    for b in range(settings.blocks):
        k = b % len(sides)
        for side in sides[k:] + sides[:k]:
            # instance turns change every len(sides) blocks, so each instance also meets every order
            invoke = side.invokes[(b // len(sides)) % len(side.invokes)]
            out[side.role].append([timed(invoke, **kw) for _ in range(settings.block_size)])
    return out


def weighted_medians(blocks: list[list[float]], weights: np.ndarray) -> np.ndarray:
    """The median of the pooled samples of each resample, where row r of `weights` says how often each
    block was drawn: np.median of the samples repeated so (the mean of the two middle ones at an even count)."""
    values = np.concatenate([np.asarray(b, float) for b in blocks])
    block_of = np.concatenate([np.full(len(b), i) for i, b in enumerate(blocks)])
    order = values.argsort(kind="mergesort")
    cum = weights[:, block_of[order]].astype(float).cumsum(axis=1)  # [resamples, samples], in value order
    half = cum[:, -1:] / 2.0
    lo = (cum >= half).argmax(axis=1)  # the sample holding the lower middle position
    hi = (cum > half).argmax(axis=1)  # ... and the upper one (the same sample unless the count splits there)
    return (values[order][lo] + values[order][hi]) / 2.0


def ratio_interval(num: list[list[float]], den: list[list[float]], level: float = 0.95, resamples: int = 2000,
                   seed: int = 0) -> dict:
    """p50(num) / p50(den) over all samples, with a paired block-bootstrap percentile interval.

    `num` and `den` hold the same number of blocks, block i of both measured in the same round.
    """
    if len(num) != len(den) or len(num) < 2:
        raise ValueError("the two sides need the same number (>= 2) of blocks")
    point = float(np.median(np.concatenate(num)) / np.median(np.concatenate(den)))
    weights = resample_weights(len(num), resamples, seed)
    reps = weighted_medians(num, weights) / weighted_medians(den, weights)
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    per_block = [float(np.median(a) / np.median(b)) for a, b in zip(num, den, strict=True)]
    return {"ratio": point, "lo": float(lo), "hi": float(hi), "level": level, "width": float(hi - lo),
            "method": "paired block bootstrap, percentile", "resamples": resamples, "seed": seed,
            "blocks": len(num), "per_block_ratio": per_block, "verdict": verdict(float(lo), float(hi))}


def verdict(lo: float, hi: float) -> str:
    """What the interval says against 1 (the gate's own threshold is applied by `harness check`)."""
    if lo > 1.0:
        return "slower"
    if hi < 1.0:
        return "faster"
    return "no difference detected"


def ab_body(sides: list[Side], blocks: dict[str, list[list[float]]], settings: ABSettings) -> dict:
    """The record body: each side with its samples and blocks, and every ratio the sides allow."""
    out_sides = {}
    for side in sides:
        flat = [x for b in blocks[side.role] for x in b]
        out_sides[side.role] = {**side.about, "blocks_s": blocks[side.role], "samples_s": flat,
                                "stats": summarize(flat)}
    ratios = {f"{a}/{b}": ratio_interval(blocks[a], blocks[b], settings.level, settings.resamples, settings.seed)
              for a, b in RATIOS if a in blocks and b in blocks}
    return {"design": {"what": WHAT, "order": "rotating", **asdict(settings)}, "sides": out_sides, "ratios": ratios}


@dataclass(frozen=True)
class SideSpec:
    """A model side as the command gives it: the label typed, its card, and how to run it."""

    label: str
    card: ModelCard
    options: BackendOptions


def ab_benchmark(candidate: SideSpec, baseline: SideSpec | None, reference: bool, mirror, images_dir: Path | None,
                 settings: ABSettings, cpus: str | None = None) -> dict:
    """Load the sides in this process, stage one real image (or random pixels) on each, run the blocks,
    return the `ab_bench` record."""
    from harness.measure.bench import random_image, set_affinity
    from harness.models.images import list_images
    from harness.models.mirror import root_of
    from harness.models.pipeline import Pipeline
    from harness.records.schema import new_record

    settings.check()
    if baseline is None and not reference:
        raise HarnessError("an A/B bench needs --baseline (or --baseline-threads / -runtime / -delegate) "
                           "or --reference")
    affinity = set_affinity(cpus)
    images = list_images([images_dir], 1) if images_dir else None
    source = ({"kind": "images", "file": str(images[0])} if images else
              {"kind": "random", "note": "uniform random pixels: no real images were given"})
    specs = [(role, spec) for role, spec in (("baseline", baseline), ("candidate", candidate)) if spec is not None]
    loaded: dict[str, list] = {role: [] for role, _ in specs}
    for i in range(settings.instances):  # loaded in alternating order: neither side is always loaded last
        for role, spec in specs if i % 2 == 0 else specs[::-1]:
            pipe = Pipeline.open(spec.card, root_of(mirror), spec.options)
            image = pipe.read(images[0]) if images else random_image(pipe.preprocess, np.random.default_rng(0))
            pipe.backend.set_input(pipe.prepare(image).batch)
            loaded[role].append(pipe)
    sides = []
    for role, spec in specs:
        pipes = loaded[role]
        desc = pipes[0].describe()
        about = {"label": spec.label, "model": spec.card.to_dict(), "backend": desc, "instances": len(pipes),
                 "load_s": [p.load_s for p in pipes],
                 "settings": {"threads": spec.options.threads, "delegate": spec.options.delegate,
                              "delegate_options": dict(spec.options.delegate_options), "runtime": desc["runtime"],
                              "model_sha256": desc.get("model_sha256")}}
        sides.append(Side(role, [p.backend.invoke for p in pipes], about))
    if reference:
        from harness.models.reference import open_reference

        opts = candidate.options
        invoke, desc = open_reference(opts.runtime, opts.threads)
        sides.append(Side("reference", [invoke], {"label": desc["name"], "reference": desc,
                                                "settings": {"threads": opts.threads, "delegate": None,
                                                             "runtime": desc["runtime"]}}))
    blocks = run_blocks(sides, settings)
    return new_record("ab_bench", input=source, affinity=affinity, **ab_body(sides, blocks, settings))

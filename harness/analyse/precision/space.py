"""The search space: which plans the precision search proposes, in which order.

Expected cost ascending, so that the first plan within budget stops the rest:
1. float32 (reference: the float model as a .tflite; an NPU target cannot run it);
2. full int8 with min/max ranges (reference), then the calibration variants: all the calibration images
   instead of a draw of them, and another draw (other images);
3. int8 with the layers that inject the most error at 16-bit activations (ai-edge-quantizer, optional);
4. int8 with those layers kept in float (QuantizationDebugger denylist): each such layer is an op left to
   the CPU, so these cost more on an NPU;
5. full 16x8 (reference).
For 3 and 4 the layers are ranked by the error each injects, as `harness compare quant` ranks them
(share of the summed injected noise), measured on calibration images, never on validation images; the
prefix of the ranking is doubled until a plan meets the budget, then bisected down to the shortest that does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.analyse.precision.search import Candidate
from harness.quantize.plan import Plan


@dataclass(frozen=True)
class Space:
    """What the search may propose for one SavedModel."""

    source: dict  # {"path", "sha256"}
    calibration: dict  # Calibration.to_dict() of the main draw
    variants: tuple[tuple[str, dict, str], ...] = ()  # (name, calibration, note) of the other calibrations
    max_steps: int = 5  # plans tried per ranked family
    a16: bool = True  # propose int8 with 16-bit tensors (ai-edge-quantizer)
    float_layers: bool = True

    def plan(self, name: str, mode: str, calibration: dict | None = None, note: str = "", **kw: Any) -> Plan:
        cal = calibration if calibration is not None else (self.calibration if mode != "float32" else None)
        return Plan(name, mode, self.source, cal, note=note, **kw)


def ranked_prefixes(ranking: Callable[[], list[str]], make: Callable[[list[str]], Plan],
                    done: list[Candidate], max_steps: int) -> Iterator[tuple[Plan, str | None]]:
    """Plans with the top k ranked layers treated specially: k doubled until one meets the budget, then bisected.

    Stops when a plan fails, cannot run on the target or cannot win (more layers only cost more), or after
    `max_steps` plans.
    """
    names = ranking()
    lo, hi, k = 0, None, 1
    for _ in range(max_steps):
        if not names or k > len(names):
            return
        yield make(names[:k]), None
        cand = done[-1]
        if cand.meets_budget:
            hi = k
        elif cand.status != "measured":
            return  # failed, the target cannot run it, or it cannot win: more layers will not help
        else:
            lo = k
        if hi is None:
            if k == len(names):
                return
            k = min(2 * k, len(names))
        else:
            if hi - lo <= 1:
                return
            k = (lo + hi) // 2


def proposer(space: Space, ranking: Callable[[list[Candidate]], list[str]]) -> Callable[
        [list[Candidate]], Iterator[tuple[Plan, str | None]]]:
    """The search's proposer over `space`; `ranking(done)` ranks layers once full int8 is built."""

    def propose(done: list[Candidate]) -> Iterator[tuple[Plan, str | None]]:
        yield space.plan("float32", "float32", note="the float model as TFLite"), "float32"
        yield space.plan("int8", "int8", note="full int8, min/max ranges"), "int8"
        for name, cal, note in space.variants:
            yield space.plan(name, "int8", cal, note), None
        cache: list[list[str]] = []

        def ranked() -> list[str]:
            if not cache:
                cache.append(ranking(done))
            return cache[0]

        def a16(names: list[str]) -> Plan:
            return space.plan(f"int8+a16 top{len(names)}", "int8+a16", a16_tensors=tuple(names),
                              note=f"the {len(names)} worst layers at 16-bit activations")

        def in_float(names: list[str]) -> Plan:
            return space.plan(f"int8+float top{len(names)}", "int8", float_layers=tuple(names),
                              note=f"the {len(names)} worst layers kept in float")

        if space.a16:
            yield from ranked_prefixes(ranked, a16, done, space.max_steps)
        if space.float_layers:
            yield from ranked_prefixes(ranked, in_float, done, space.max_steps)
        yield space.plan("16x8", "16x8", note="int16 activations, int8 weights"), "int16x8"

    return propose


__all__ = ["Space", "proposer", "ranked_prefixes"]

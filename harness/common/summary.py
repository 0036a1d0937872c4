"""Plain-text tables for people; the JSON record is the machine-readable output."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.scoring.evaluator import STAT_KEYS


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


def stats_table(stats: dict[str, float]) -> str:
    return table(["stat", "value"], [(k, stats[k]) for k in STAT_KEYS])


def per_class_table(per_class: dict[str, dict[str, float]]) -> str:
    def ap(v: float) -> str:
        return "-" if v < 0 else f"{v:.3f}"

    rows = sorted(per_class.items(), key=lambda kv: -kv[1]["AP"])
    return table(["class", "AP", "AP50", "APs", "APm", "APl"],
                 [(n, ap(d["AP"]), ap(d["AP50"]), ap(d["APs"]), ap(d["APm"]), ap(d["APl"])) for n, d in rows])


def baseline_lines(cmp: dict) -> str:
    b = cmp["baseline"]
    if b is None:
        return f"measured AP {cmp['measured_ap']:.1f}; the card has no published baseline"
    head = (f"measured AP {cmp['measured_ap']:.1f} vs published {b['ap']:.1f} "
            f"({b['split']}, protocol '{b['protocol']}', {b['source']}): difference {cmp['difference']:+.1f}")
    if cmp["like_for_like"]:
        return head + " (like for like)"
    return head + "\nnot like for like: " + "; ".join(cmp["reasons"])


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10% in logs."""

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.tty = sys.stderr.isatty()
        self._last_decile = -1

    def __call__(self, done: int) -> None:
        if not self.enabled or not self.total:
            return
        frac = done / self.total
        if self.tty:
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{self.total}")
            if done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            print(f"{self.label}: {done}/{self.total}", file=sys.stderr, flush=True)

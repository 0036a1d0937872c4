"""What a doctor reports, whichever doctor (a results file, a model run): ranked findings.

A finding names a suspected cause (`id`), the AP as measured and after its correction (fractions, like
the stats; no `ap_after` for a flag that no correction can score), one line of evidence and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# A correction is worth reporting when it moves AP by at least this much (0.1 AP points).
MIN_CHANGE = 0.001
# "No false alarms": a clean run may show small findings, never one worth this much (0.5 AP points).
ALARM = 0.005
# An AP is "far below" what is expected when it falls short by more than both of these: 5 AP points, and a
# quarter of the expected AP. A subset of a split differs from the published number by chance (48 val2017
# images: about +-3 points for a 30-AP model), and a baseline may be measured under another protocol.
FAR_BELOW_POINTS = 0.05
FAR_BELOW_SHARE = 0.25


@dataclass(frozen=True)
class Finding:
    """One suspected cause: AP as given and after its correction (None for a flag), evidence, fix."""

    id: str
    ap_before: float | None
    ap_after: float | None
    evidence: str
    fix: str

    @property
    def change(self) -> float:
        """AP after minus before (0 for a flag)."""
        if self.ap_before is None or self.ap_after is None:
            return 0.0
        return self.ap_after - self.ap_before

    def to_dict(self) -> dict:
        return {"id": self.id, "ap_before": self.ap_before, "ap_after": self.ap_after,
                "evidence": self.evidence, "fix": self.fix}



def shortfall_finding(ap: float, best: float, expected: float, expected_from: str) -> Finding | None:
    """A flag when even the best AP any correction reached (`best`) is far below `expected` (fractions)."""
    gap = expected - best
    if gap <= max(FAR_BELOW_POINTS, FAR_BELOW_SHARE * expected):
        return None
    found = (f"after every correction found it is {100 * best:.1f}, still" if best > ap + MIN_CHANGE
             else "and no cause the doctor checks explains it: it is")
    return Finding("below-expected", ap, None,
                   f"AP {100 * ap:.1f}, {expected_from} is {100 * expected:.1f}; {found} {100 * gap:.1f} points below",
                   "check what the doctor cannot: the model file (sha256 against its card), the ground truth "
                   "and image set it was scored on, and the protocol the expected number was measured under")


def format_together(together: dict | None) -> str:
    """One line: the AP with every correction applied at once (empty without two corrections)."""
    if not together:
        return ""
    return (f"all fixes together ({' + '.join(together['findings'])}): AP {100 * together['ap_before']:.1f} -> "
            f"{100 * together['ap_after']:.1f}")


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Largest AP change first; flags (no after, or a change under MIN_CHANGE) after the scored ones."""
    def key(f: Finding) -> tuple[int, float, str]:
        scored = f.ap_after is not None and abs(f.change) >= MIN_CHANGE
        return (0 if scored else 1, -abs(f.change), f.id)

    return sorted(findings, key=key)


def format_findings(findings: Sequence[Finding]) -> str:
    """A ranked console table: AP before/after in points, the change, the evidence; then the fixes."""
    if not findings:
        return "no problem found"

    def pts(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    rows = [("#", "finding", "AP before", "AP after", "change", "evidence")]
    for n, f in enumerate(findings, 1):
        change = "flag" if f.ap_after is None else f"{100 * f.change:+.1f}"
        rows.append((str(n), f.id, pts(f.ap_before), pts(f.ap_after), change, f.evidence))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i in (0, 1) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
             strict=False))) + "  " + r[5] for r in rows]
    lines.append("")
    lines.extend(f"{n}. {f.id}: {f.fix}" for n, f in enumerate(findings, 1))
    return "\n".join(lines)

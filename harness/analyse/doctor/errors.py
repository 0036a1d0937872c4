"""Where the AP goes when the conventions are right: the doctor's reading of the TIDE decomposition.

Not a finding (a finding is something wrong with the file, and exits 1): a model that misplaces small
boxes is a worse model, not a broken results file. The doctor says which error type costs most, and
says "mostly" when one type costs at least half of what the six cost together, naming the object size
where that type costs most when it costs at least half again as much there as at any other size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.scoring.errors import ERROR_NAMES, ERROR_TYPES

MOSTLY = 0.5  # one type's share of the six types' summed ΔAP50
ONE_SIZE = 1.5  # how much more that type costs at one size than at the next


def profile(errors: Mapping) -> dict | None:
    """{type, share, size, line} from a decomposition block (`results.errors`), or None without one."""
    sizes = errors.get("sizes") or {}
    block = sizes.get("all")
    if not block:
        return None
    costs = {t: max(0.0, float(block["errors"].get(t, 0.0))) for t in ERROR_TYPES}
    total = sum(costs.values())
    if total <= 0:
        return None
    top = max(costs, key=lambda t: costs[t])
    share = costs[top] / total
    per_size = sorted(((float((sizes.get(s) or {}).get("errors", {}).get(top, 0.0)), s)
                       for s in ("small", "medium", "large") if s in sizes), reverse=True)
    size = per_size[0][1] if per_size and per_size[0][0] > 0 and (
        len(per_size) < 2 or per_size[0][0] >= ONE_SIZE * max(per_size[1][0], 1e-9)) else None
    name = ERROR_NAMES[top]
    where = f", most of it on {size} objects ({', '.join(f'{s} {100 * v:.1f}' for v, s in per_size)})" \
        if size else ""
    lead = f"mostly {name}" if share >= MOSTLY else f"{name} first"
    line = (f"where the AP goes: {lead}: fixing it alone would add {100 * costs[top]:.1f} AP50 points, "
            f"{share:.0%} of the {100 * total:.1f} that the six TIDE error types cost{where}")
    return {"type": top, "share": round(share, 4), "size": size, "line": line}


def profile_of(gt, entries: Sequence[dict], image_ids: Sequence[int]) -> dict | None:
    from harness.scoring.errors import error_block

    block = error_block(gt, entries, image_ids)
    return profile(block) if block else None

"""Set a measured AP beside the card's published baseline and say whether the two are comparable."""

from __future__ import annotations

from collections.abc import Sequence

from harness.models.zoo import ModelCard


def compare(card: ModelCard, protocol: str, dataset: dict, ap: float, overridden: Sequence[str] = ()) -> dict:
    """The comparison block of a run record: both numbers, their difference, and what differs.

    `like_for_like` is true only when split, image count and protocol all match the baseline's, and
    the protocol ran as written (`overridden` names what a pipeline variant changed); the reasons list
    says what does not, so a reader never takes a subset run for a reproduction.
    """
    b = card.baseline
    measured = round(ap * 100, 2)
    if b is None:
        return {"measured_ap": measured, "baseline": None, "like_for_like": False,
                "reasons": ["the card has no published baseline"]}
    reasons = []
    split = dataset.get("split")
    if split is None or split not in b.split:
        reasons.append(f"split differs: ran on {split or 'an unknown split'}, published on {b.split}")
    if b.images is None:
        reasons.append("the published number does not say how many images it used")
    elif dataset.get("image_count") != b.images:
        reasons.append(f"image count differs: {dataset.get('image_count')} here, {b.images} published")
    if protocol != b.protocol:
        reasons.append(f"protocol differs: ran '{protocol}', published under '{b.protocol}'")
    if overridden:
        reasons.append(f"protocol '{protocol}' ran with its {' and '.join(overridden)} overridden")
    return {
        "measured_ap": measured,
        "baseline": {"ap": b.ap, "split": b.split, "images": b.images, "protocol": b.protocol,
                     "source": b.source, "note": b.note, "quote": b.quote},
        "difference": round(measured - b.ap, 2),
        "like_for_like": not reasons,
        "reasons": reasons,
    }

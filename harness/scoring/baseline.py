"""Set a measured AP beside the card's published baseline and say whether the two are comparable."""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import HarnessError
from harness.models.zoo import ModelCard


def compare(card: ModelCard, protocol: str, dataset: dict, ap: float, interval: dict | None = None,
            overridden: Sequence[str] = ()) -> dict:
    """The comparison block of a run record: both numbers, their difference, and what differs.

    `like_for_like` is true only when split, image count and protocol all match the baseline's, and
    the protocol ran as written (`overridden` names what a pipeline variant changed); the reasons list
    says what does not, so a reader never takes a subset run for a reproduction. With the
    run's bootstrap `interval` (the record's `results.interval`), `interval_verdict` says whether the
    published AP is within sampling error of the measured one (`baseline_verdict`, with the published
    number's own uncertainty when its image count is known): a subset of the published split differs
    from it by chance alone, and this says by how much it may.
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
    out = {
        "measured_ap": measured,
        "baseline": {"ap": b.ap, "split": b.split, "images": b.images, "protocol": b.protocol,
                     "source": b.source, "note": b.note, "quote": b.quote},
        "difference": round(measured - b.ap, 2),
        "like_for_like": not reasons,
        "reasons": reasons,
    }
    if interval is not None and (interval.get("AP") or {}).get("lo") is not None:
        out["interval_verdict"] = interval_verdict(interval, b.ap, b.images, reasons)
    return out


def interval_verdict(interval: dict, published_ap: float, published_images: int | None, reasons: list[str]) -> dict:
    """`baseline_verdict` rounded for a record, with the sentence the console and report print."""
    from harness.scoring.intervals import from_record
    from harness.scoring.verdicts import baseline_verdict

    restored = from_record(interval)
    if restored is None:  # a block without "level" or "images": baseline_verdict would fail on None
        raise HarnessError("the run's interval block has no \"level\" or \"images\"; "
                           "re-run eval to write a complete results.interval")
    v = baseline_verdict(restored, published_ap, published_images)
    v["lo"], v["hi"] = max(v["lo"], 0.0), min(v["hi"], 100.0)  # widened past what an AP can be
    on = (f" on {published_images} (interval widened by that number's own sampling error)" if published_images
          else " (image count not published: taken as exact)")
    text = (f"{v['measured']:.2f} [{v['lo']:.2f}, {v['hi']:.2f}] on {v['images']} images vs {published_ap:g} "
            f"published{on}: {v['verdict']}")
    # Sampling is all the interval accounts for: a different split or protocol is another question.
    other = [r for r in reasons if not r.startswith(("image count differs", "the published number does not say"))]
    if other:
        text += " (sampling error only; " + "; ".join(other) + ")"
    keep = ("verdict", "measured", "lo", "hi", "published", "published_images", "published_se", "difference",
            "level", "images", "basis", "assumption")
    out = {k: (round(v[k], 4) if isinstance(v[k], float) else v[k]) for k in keep}
    out["text"] = text
    return out

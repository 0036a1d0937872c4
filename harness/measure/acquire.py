"""Getting what a run needs onto this machine: `harness fetch NAME...` and `harness eval MODEL --coco auto`.

A name is a dataset manifest (datasets/*.json) or a zoo card; both are downloaded into the cache,
verified and reported as items (name, kind, path, downloaded, bytes, sha256, ...), so the command can
say what it fetched and what it found already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.models.cards import ModelCard
from harness.models.datasets import available, coco_auto, fetch_dataset
from harness.models.fetch import cache_root, downloads_recorded, resolve_model
from harness.models.mirror import Mirror, root_of
from harness.models.pins import pins_path, read_pins
from harness.models.zoo import ZOO

COCO_AUTO = "auto"  # the --coco value that fetches the official val2017 into the cache


def fetch_model(card: ModelCard, mirror: Mirror | None, cache: Path | None = None) -> dict:
    """The card's model from the mirror or the cache, downloaded if neither has it; what was done.

    A card with a published sha256 is checked against it (harness.models.fetch); one without (a TF Hub
    handle) is trusted on first use (harness.models.pins): `pin` says whether this call checked its outputs
    against the card and pinned it ("new"), or verified it against an earlier pin ("verified"); None when
    the copy came from a mirror or the card's own hash.
    """
    cache = cache or cache_root()
    url = card.source.url
    pinned = card.source.sha256 is None and url is not None
    before = read_pins(cache).get(url) if pinned and url else None
    with downloads_recorded() as got:
        path = resolve_model(card, root_of(mirror), cache)
    after = read_pins(cache).get(url) if pinned and url else None
    item = {"name": card.name, "kind": "model", "path": str(path), "downloaded": bool(got),
            "url": card.source.url, "sha256": card.source.sha256 or (got[-1]["sha256"] if got else None),
            "confirmed": card.source.sha256 is not None,
            "pin": None if after is None else ("verified" if before else "new"),
            "pins_file": str(pins_path(cache)) if after else None,
            "content_sha256": after["content_sha256"] if after else None}
    if got:
        item.update({"bytes": got[-1]["bytes"], "from": got[-1]["from"]})
    return item


def fetch_named(names: Sequence[str], mirror: Mirror | None, *, progress: bool | None = None) -> dict:
    """`harness fetch`: each name, a dataset manifest or a zoo card, into the cache; the fetch record."""
    from harness.records.schema import new_record

    datasets = available()
    unknown = [n for n in names if n not in datasets and n not in ZOO]
    if unknown:
        raise HarnessError(f"nothing to fetch called {unknown[0]!r}: datasets {', '.join(datasets) or 'none'}; "
                           "or a zoo model (harness zoo)")
    cache = cache_root()
    items = [fetch_dataset(n, cache, progress=progress) if n in datasets else fetch_model(ZOO[n], mirror, cache)
             for n in names]
    return new_record("fetch", cache=str(cache), items=items)


def fetch_for_eval(card: ModelCard, mirror: Mirror | None, *, progress: bool | None = None) -> tuple[Path, list[dict]]:
    """`--coco auto`: the model and the official val2017 with its annotations, each fetched and verified once.

    Returns the COCO root in the cache and what was fetched or found, model first.
    """
    cache = cache_root()
    model = fetch_model(card, mirror, cache)
    root, data = coco_auto(cache, progress=progress)
    return root.root, [model, *data]

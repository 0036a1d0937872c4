"""Trust on first use, for a model whose card publishes no sha256 (a TF Hub handle, say).

Nothing published says which bytes are right, so the first download is judged by what it does: before it
enters the cache it is loaded and one image is run through it, and its outputs must meet the card's
contract (the heads the card names, of the shapes it gives, decodable by the card's decoder). Only then
is it cached, and its hashes are pinned in a lock file beside the cache ($HARNESS_CACHE/pins.json): the
sha256 of what was downloaded and the model identity of what was cached. Every later use verifies the
cached copy against the pin (a cache hit included), and a fresh download (the cache emptied) must be the
pinned file: a server that changes what it serves, or a cache file changed on disk, is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.common.fileio import write_json_atomic
from harness.common.identity import model_sha256
from harness.errors import HarnessError, first_line
from harness.models.cards import ModelCard

PINS_FILE = "pins.json"
# The image the contract check runs: mid-grey, of a size every preprocessing takes.
CHECK_IMAGE = (64, 64)


def pins_path(cache: Path) -> Path:
    return cache / PINS_FILE


def read_pins(cache: Path) -> dict[str, dict]:
    """The pins by official address ({} when none were made); a damaged lock file is an error, not a reset."""
    path = pins_path(cache)
    if not path.exists():
        return {}
    try:
        pins = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read the pins of models fetched on first use, {path}: {first_line(exc)}; "
                           "restore it, or delete it and the cached models to trust them again") from None
    if not isinstance(pins, dict):
        raise HarnessError(f"{path} is not a pins file (a JSON object by address)")
    return pins


def _write_pin(cache: Path, url: str, pin: dict) -> None:
    """Add one pin: read, update and rename into place under the cache's fetch lock (harness.models.fetch)."""
    from harness.models.fetch import exclusive

    path = pins_path(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path):
        pins = read_pins(cache)
        pins[url] = pin
        write_json_atomic(path, pins, indent=2)


def check_contract(card: ModelCard, path: Path) -> None:
    """Load the model as the card says and run one image through it: the card's heads must come out and decode.

    Raises HarnessError saying what does not match; the caller then leaves the file out of the cache.
    """
    from harness.models.pipeline import Pipeline

    try:
        pipeline = Pipeline.open(card, model_path=path)
        det = pipeline.detect(np.full((*CHECK_IMAGE, 3), 128, np.uint8))
        if not (len(det.boxes) == len(det.scores) == len(det.category_ids)):
            raise HarnessError("the decoded boxes, scores and classes differ in number")
    except HarnessError as exc:
        raise HarnessError(f"{card.name}: the download does not meet the card's contract ({exc}); not cached") \
            from None
    except Exception as exc:  # a runtime or decoder refusing the file: any type, one line
        raise HarnessError(f"{card.name}: the download does not meet the card's contract "
                           f"({type(exc).__name__}: {first_line(exc)}); not cached") from None


def resolve_pinned(card: ModelCard, cache: Path, fetcher: Callable[..., Path]) -> Path:
    """The card's model fetched with trust on first use: checked and pinned the first time, verified after."""
    from harness.models.fetch import downloads_recorded

    url = card.source.url
    assert url is not None
    pins = pins_path(cache)
    pin = read_pins(cache).get(url)
    if pin is None:
        with downloads_recorded() as got:
            path = fetcher(url, cache, None, check=lambda p: check_contract(card, p))
        if not got:  # already in the cache, from before pins were kept: check it now, as a download would be
            check_contract(card, path)
        _write_pin(cache, url, {"name": card.name, "sha256": got[-1]["sha256"] if got else None,
                                "content_sha256": model_sha256(path),
                                "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        return path
    try:
        path = fetcher(url, cache, pin.get("sha256"), origin=f"the sha256 pinned on first use in {pins}")
    except HarnessError as exc:
        if "sha256 mismatch" not in str(exc):
            raise
        raise HarnessError(f"{card.name}: {exc}; if the publisher really changed the model, delete its pin "
                           f"({url}) from {pins} to check and pin the new file") from None
    content = model_sha256(path)
    if content != pin["content_sha256"]:
        raise HarnessError(f"{card.name}: the cached copy {path} is not the one pinned on first use (model "
                           f"sha256 {content}, pinned {pin['content_sha256']} in {pins}); delete {path} to fetch "
                           "it again")
    return path


def pin_archive(cache: Path, url: str, sha256: str, size: int) -> dict:
    """Pin a dataset archive that no one publishes a hash for (harness.models.datasets), by its first download:
    the same lock file as the models', keyed by address; every later download must be these bytes."""
    pin = {"kind": "dataset archive", "sha256": sha256, "bytes": size,
           "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_pin(cache, url, pin)
    return pin

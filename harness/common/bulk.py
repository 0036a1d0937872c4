"""Building data in bulk: a full-COCO results file is 3.5M small containers, made and checked at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a bulk build of acyclic containers (a full-COCO results file is
    3.5M of them, and each collection would walk them all again: a third of the parse); refcounting still
    frees everything, and the collector is back on, as it was, on the way out."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()

"""Plain-text tables and progress for people; the JSON record is the machine-readable output.

Only what every layer may use lives here (a generic table, a progress bar). The COCO-specific tables
(stats, per class, baseline) are CLI formatting: harness.cli.format.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TextIO


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned first column, right-aligned numbers, a dashed rule under the header."""
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


def progress_enabled(stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Draw progress only for a person: the stream is a terminal and this is not a CI job (logs stay clean)."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    return bool(getattr(stream, "isatty", lambda: False)()) and not environ.get("CI")


class Progress:
    """A tqdm bar on stderr (rate and ETA) fed with "done so far" counts; silent in logs and CI.

    Callable with the number of items done, so loops that know nothing of tqdm (the runner, quant_compare)
    can report to it. tqdm is imported only when a bar is drawn.
    """

    def __init__(self, total: int, label: str, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled and total and progress_enabled(self.stream))
        self._bar: Any = None  # a tqdm bar, once drawn

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.label, file=self.stream, unit="img", dynamic_ncols=True,
                             leave=True)
        self._bar.update(done - self._bar.n)
        if done >= self.total:
            self.close()

    def close(self) -> None:
        """End the bar's line (on an error too, so the error message starts on a line of its own)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ByteProgress:
    """A tqdm byte bar (size, rate, ETA) for a download that may resume part-way; drawn only when enabled."""

    def __init__(self, name: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.name, self.enabled = name, enabled
        self.stream = sys.stderr if stream is None else stream
        self._bar: Any = None  # a tqdm bar, once drawn

    def start(self, done: int, total: int | None) -> None:
        """Begin (or, after a dropped connection, begin again) at `done` of `total` bytes."""
        self.close()
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, desc=self.name, file=self.stream, unit="B", unit_scale=True,
                             unit_divisor=1024, dynamic_ncols=True, leave=True)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

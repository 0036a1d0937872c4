"""Calibration sets that can be replayed: which images, in which order, and how each becomes an input.

A quantized model can only be compared with a published one when its calibration images, their order and
their resize filter are known. NXP's eIQ CenterNet recipe draws them with Python's `random` (sorted file
list, `random.seed(1337)`, shuffle, the first 100) and resizes with PIL's default filter; images are read
and prepared by harness.models.images, as the eval reads them, with the filter the calibration names.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.common.fileio import sha256_file
from harness.common.identity import names_sha256
from harness.errors import HarnessError
from harness.models.images import RESIZE_FILTERS, check_filter, pillow_batch, read_rgb, resolved_filter


def _shuffle_draw(files: list[str], count: int, seed: int | None) -> list[str]:
    """NXP's draw: the sorted list shuffled by Python's Mersenne Twister seeded with `seed`, then the first `count`."""
    rng = random.Random(seed)  # the same sequence as random.seed(seed) + random.shuffle
    out = list(files)
    rng.shuffle(out)
    return out[:count]


def _sorted_draw(files: list[str], count: int, seed: int | None) -> list[str]:
    """The first `count` files in name order (seed unused)."""
    return list(files)[:count]


# How files are drawn from a directory: name -> fn(sorted names, count, seed) -> names in feeding order.
DRAWS: dict[str, Callable[[list[str], int, int | None], list[str]]] = {
    "shuffle": _shuffle_draw,
    "sorted": _sorted_draw,
}


def glob_names(root: str | Path) -> list[str]:
    """NXP's recipe lists calibration files with sorted(glob(dir/*)), whatever their type; a replay must too.

    The names `sorted(glob(root + '/*'))` gives for one directory: non-hidden regular files, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"calibration directory not found: {root}")
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.is_file())


def read_list(path: str | Path) -> list[str]:
    """A calibration list: a JSON array of file names, or a text file with one name per line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise HarnessError(f"cannot read calibration list {path}: {exc.strerror or exc}") from None
    if path.suffix == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"calibration list {path} is not JSON: {exc}") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise HarnessError(f"calibration list {path} must be a JSON array of file names")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise HarnessError(f"calibration list {path} names no files")
    return names


@dataclass(frozen=True)
class Calibration:
    """Calibration images in feeding order and how each becomes a model input."""

    root: Path
    files: tuple[str, ...]
    draw: str  # "shuffle" | "sorted" | "list"
    seed: int | None
    resize: str  # a RESIZE_FILTERS key
    size: tuple[int, int]  # (height, width)
    dtype: str = "float32"
    list_file: str | None = None

    def batches(self) -> Iterator[np.ndarray]:
        """Each image as [1, H, W, 3]: read and prepared as the eval does (RGB, resized without keeping the
        aspect ratio, values 0..255), with this calibration's own filter."""
        for name in self.files:
            yield pillow_batch(read_rgb(self.root / name), self.size, self.dtype, self.resize)

    def to_dict(self) -> dict:
        from PIL import __version__ as pillow

        return {
            "dir": str(self.root), "draw": self.draw, "seed": self.seed, "count": len(self.files),
            "list_file": self.list_file, "resize": self.resize, "resize_resolved": resolved_filter(self.resize),
            "pillow": pillow, "size": list(self.size), "dtype": self.dtype, "files": list(self.files),
            "files_sha256": names_sha256(self.files),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        """The calibration a sidecar record describes (to replay it, e.g. for the QuantizationDebugger)."""
        return cls(Path(d["dir"]), tuple(d["files"]), d["draw"], d.get("seed"), d["resize"], tuple(d["size"]),
                   d.get("dtype", "float32"), d.get("list_file"))


def draw_calibration(root: str | Path, *, size: tuple[int, int], count: int | None = None, draw: str = "shuffle",
                     seed: int | None = 1337, resize: str = "pil-default", list_file: str | Path | None = None,
                     dtype: str = "float32") -> Calibration:
    """Draw a calibration set from a directory, or replay a list of its files in the listed order."""
    root = Path(root)
    if count is not None and count < 1:
        raise HarnessError("the calibration count must be at least 1")
    check_filter(resize)
    if list_file is not None:
        names = read_list(list_file)
        missing = [n for n in names if not (root / n).is_file()]
        if missing:
            raise HarnessError(f"{len(missing)} file(s) of {list_file} are not in {root}, e.g. {missing[0]}")
        names = names[:count] if count is not None else names
        return Calibration(root, tuple(names), "list", None, resize, size, dtype, str(list_file))
    if draw not in DRAWS:
        raise HarnessError(f"unknown draw {draw!r}; use one of {', '.join(DRAWS)} (or --calib-list FILE)")
    files = glob_names(root)
    if not files:
        raise HarnessError(f"no files in calibration directory {root}")
    count = len(files) if count is None else count
    if count > len(files):
        raise HarnessError(f"{root} holds {len(files)} files, fewer than the {count} asked for")
    return Calibration(root, tuple(DRAWS[draw](files, count, seed)), draw, seed if draw == "shuffle" else None,
                       resize, size, dtype)


def calibration_overlap(cal: Calibration, eval_dir: str | Path) -> dict:
    """Calibration images that are also evaluation images, by file name and by content.

    Calibrating on the images that are scored flatters the quantized model (NXP's 17.2 was measured so).
    """
    eval_dir = Path(eval_dir)
    eval_names = set(glob_names(eval_dir)) if eval_dir.is_dir() else set()
    by_name = sorted(set(cal.files) & eval_names)
    eval_hashes = {sha256_file(eval_dir / n): n for n in eval_names}
    by_content = sorted(n for n in cal.files if sha256_file(cal.root / n) in eval_hashes)
    return {"eval_dir": str(eval_dir), "eval_count": len(eval_names), "by_name": by_name, "by_content": by_content}


__all__ = ["DRAWS", "RESIZE_FILTERS", "Calibration", "calibration_overlap", "draw_calibration", "glob_names",
           "read_list", "resolved_filter"]

"""An append-only checkpoint of an eval: one JSON line per finished image, so a killed run resumes.

The first line says what produced the detections (the run key: model sha256, protocol, decoder settings,
annotation file, image list, shard); a checkpoint from any other run is refused rather than mixed in.
Each later line is one image's results entries, written and flushed as soon as the image is done. A
kill can only tear the last line; it is dropped and that image runs again. The detections of a resumed
run are the checkpoint's lines in order followed by the new ones: the same list, in the same order, as
an uninterrupted run, so the scores are bit-identical.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from harness.common.identity import image_ids_sha256
from harness.errors import HarnessError

FORMAT = "centernet-harness/eval-checkpoint"
VERSION = 1
SUFFIX = ".ckpt.jsonl"


def checkpoint_path(detections_file: Path) -> Path:
    """The checkpoint beside the detections file it will become."""
    return detections_file.with_name(detections_file.name.removesuffix(".json") + SUFFIX)


def normalized(key: dict) -> dict:
    """The key as it reads back from JSON (tuples become lists), so keys compare like for like."""
    return json.loads(json.dumps(key))


def key_difference(a: dict, b: dict) -> str | None:
    """The first field (in `b`'s order: model first) in which run key `a` (there) differs from `b` (here),
    said for a person; None when they agree."""
    a, b = normalized(a), normalized(b)
    for name in [*b, *(k for k in a if k not in b)]:
        if a.get(name) != b.get(name):
            return f"{name}: {_short(a.get(name))} there, {_short(b.get(name))} here"
    return None


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Checkpoint:
    """The checkpoint file of one run: read what an earlier attempt finished, append what this one does.

    The file is created on the first append (an eval that fails before finishing an image leaves
    nothing), under an exclusive lock so two processes never write the same checkpoint.
    """

    def __init__(self, path: str | Path, key: dict, restart: bool = False, fsync_every_s: float = 1.0) -> None:
        self.path = Path(path)
        self.key = normalized(key)
        self.fsync_every_s = fsync_every_s
        self._file: IO[bytes] | None = None
        self._good_bytes = 0  # length of the intact prefix; a torn tail beyond it is cut before appending
        self._last_sync = 0.0
        if restart:
            self.path.unlink(missing_ok=True)
        self.done: list[tuple[int, list[dict]]] = self._read() if self.path.exists() else []

    def _read(self) -> list[tuple[int, list[dict]]]:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        # Only complete lines count: what follows the last newline was torn by a kill.
        complete, offsets, pos = lines[:-1], [], 0
        for line in complete:
            pos += len(line) + 1
            offsets.append(pos)
        parsed = [_parse(line) for line in complete]
        if not parsed or not _is_header(parsed[0]):
            raise HarnessError(f"{self.path} is not an eval checkpoint; delete it or pass --restart")
        why = key_difference(parsed[0]["key"], self.key)
        if why:
            raise HarnessError(f"checkpoint {self.path} was written by a different run ({why}); "
                               "delete it or pass --restart to start over")
        done: list[tuple[int, list[dict]]] = []
        seen: set[int] = set()
        self._good_bytes = offsets[0]
        for n, rec in enumerate(parsed[1:], start=2):
            if not _is_image_record(rec):
                if any(_is_image_record(r) for r in parsed[n:]):  # damage before intact lines: not a torn tail
                    raise HarnessError(f"checkpoint {self.path} is damaged at line {n}; "
                                       "delete it or pass --restart to start over")
                break
            if rec["image_id"] in seen:
                raise HarnessError(f"checkpoint {self.path} lists image {rec['image_id']} twice (line {n}); "
                                   "delete it or pass --restart to start over")
            seen.add(rec["image_id"])
            done.append((rec["image_id"], rec["detections"]))
            self._good_bytes = offsets[n - 1]
        return done

    def restore(self, image_ids: Sequence[int]) -> list[tuple[int, list[dict]]]:
        """The finished images, checked to be the first of `image_ids` in order (the run is sequential)."""
        got = [i for i, _ in self.done]
        if got != list(image_ids[: len(got)]):
            raise HarnessError(f"checkpoint {self.path} does not follow this run's image order; "
                               "delete it or pass --restart to start over")
        return self.done

    def append(self, image_id: int, detections: list[dict]) -> None:
        """Record one finished image: one line, flushed now; fsync'd at most every `fsync_every_s`."""
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(json.dumps({"image_id": image_id, "detections": detections}).encode() + b"\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_every_s:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # the header appears whole or not at all
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(json.dumps({"format": FORMAT, "version": VERSION, "key": self.key}).encode() + b"\n")
            os.replace(tmp, self.path)
            self._good_bytes = self.path.stat().st_size
        f = open(self.path, "r+b")  # noqa: SIM115 - held open for the whole run
        _lock(f, self.path)
        f.truncate(self._good_bytes)  # drop a torn last line before appending after it
        f.seek(self._good_bytes)
        self._file = f

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def remove(self) -> None:
        """The run is finished and its outputs are written: the checkpoint has served its purpose."""
        self.close()
        self.path.unlink(missing_ok=True)


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _is_header(rec: object) -> bool:
    return (isinstance(rec, dict) and rec.get("format") == FORMAT and rec.get("version") == VERSION
            and isinstance(rec.get("key"), dict))


def _is_image_record(rec: object) -> bool:
    return (isinstance(rec, dict) and isinstance(rec.get("image_id"), int)
            and isinstance(rec.get("detections"), list))


def _lock(f: IO[bytes], path: Path) -> None:
    """An exclusive, non-blocking lock held until the process ends (a kill releases it too)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, one run per output directory is the user's business
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise HarnessError(f"another harness eval is writing {path}; wait for it or use another --out") from None


def run_key(card, protocol: str, model_sha256: str, runtime: str | None, delegate: str | None,
            annotation_sha256: str, image_ids: Sequence[int], shard: object | None = None, *,
            preprocess=None, decoder_settings: dict | None = None) -> dict:
    """What decides an eval's detections: a checkpoint (or a shard) made under another key is not mixed in.

    `model_sha256` is the model's one identity (harness.common.identity, Pipeline.model_sha256);
    `preprocess` / `decoder_settings` are the pipeline's effective ones (default: the protocol's). Threads
    and the scoring engine are left out on purpose: they do not change which boxes are written.
    """
    proto = card.protocol(protocol)
    pp = preprocess or card.preprocess(protocol)
    return normalized({
        "model": card.name, "model_sha256": model_sha256, "protocol": protocol,
        "decoder": card.decoder,
        "decoder_settings": card.decoder_settings(protocol) if decoder_settings is None else decoder_settings,
        "box_convention": proto.box_convention, "score_threshold": proto.score_threshold,
        "input": pp.to_dict(), "outputs": card.to_dict()["outputs"],
        "runtime": runtime, "delegate": delegate,
        "annotation_sha256": annotation_sha256, "image_ids_sha256": image_ids_sha256(image_ids),
        "shard": str(shard) if shard is not None else None,
    })

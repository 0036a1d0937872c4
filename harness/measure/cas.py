"""The board's content-addressed store: files named by their sha256, so a second run copies nothing it has.

Runs on the board with the standard library only. The host sends this file's source as `python3 -c SOURCE
probe|receive|forget` before the bundle is there (`probe` reads the wanted hashes as JSON on stdin and prints
what the board holds, its Python, machine, TFLite runtimes and free disk; `receive` takes a tar stream of
files named by their sha256 on stdin, checks every hash and adds them; `forget RUN` drops a run folder the
host has fetched). The bundle's job entry (harness.measure.job) uses the same layout:

    $XDG_CACHE_HOME/centernet-harness (default ~/.cache/centernet-harness)
        cas/<sha256>        read-only files: the bundle, job specs, models, images
        runs/<id>/          one job's working folder: its inputs (links into cas/), checkpoint, outputs

Errors reach the host as one line on stderr starting with MARK (`@harness {"error": ...}`), exit status 2.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tarfile

MARK = "@harness "  # a line on stderr the host reads (progress, the one-line error); any other line is shown
# TFLite runtimes by the name harness.models.backends.tflite_runtimes.RUNTIMES gives them, and the module each imports.
RUNTIME_MODULES = (("ai-edge-litert", "ai_edge_litert"), ("tflite-runtime", "tflite_runtime"),
                   ("tf.lite", "tensorflow"))
NEEDED_MODULES = (("numpy", "numpy"), ("Pillow", "PIL"))
DISK_FULL = "the board's disk is full under {where}: free some space there (or remove old runs in runs/)"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "centernet-harness")


def cas_dir() -> str:
    return os.path.join(cache_dir(), "cas")


def runs_dir() -> str:
    return os.path.join(cache_dir(), "runs")


def emit(**event: object) -> None:
    """One event line for the host (progress, error), flushed now."""
    sys.stderr.write(MARK + json.dumps(event) + "\n")
    sys.stderr.flush()


def probe(wanted: list[str]) -> dict:
    """What the board has: which of `wanted` are in cas/, its Python and machine, TFLite runtimes, which of
    numpy and Pillow it lacks, free bytes."""
    cas = cas_dir()
    os.makedirs(cas, exist_ok=True)
    present = [sha for sha in wanted if os.path.isfile(os.path.join(cas, sha))]
    runtimes = [name for name, module in RUNTIME_MODULES if importlib.util.find_spec(module) is not None]
    missing = [name for name, module in NEEDED_MODULES if importlib.util.find_spec(module) is None]
    return {"python": platform.python_version(), "executable": sys.executable, "machine": platform.machine(),
            "cache": cache_dir(), "present": present, "runtimes": runtimes, "missing": missing,
            "free_bytes": shutil.disk_usage(cas).free}


def receive(stream) -> dict:
    """Add the files of a tar stream (each member named by its sha256) to cas/, each checked and renamed
    into place only when whole; returns how many files and bytes came."""
    cas = cas_dir()
    os.makedirs(cas, exist_ok=True)
    files = size = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = member.name
            if not member.isfile() or len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
                raise ValueError(f"unexpected member {name!r} in the stream")
            src = tar.extractfile(member)
            if src is None:  # isfile() above: a regular member always has a reader
                raise ValueError(f"member {name!r} cannot be read")
            tmp = os.path.join(cas, f".{name}.{os.getpid()}.tmp")
            digest = hashlib.sha256()
            with open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != name:
                os.unlink(tmp)
                raise ValueError(f"file {name} arrived damaged (sha256 {digest.hexdigest()})")
            os.chmod(tmp, 0o444)
            os.replace(tmp, os.path.join(cas, name))
            files, size = files + 1, size + member.size
    return {"files": files, "bytes": size}


def forget(run_id: str) -> None:
    """Drop a run folder whose outputs the host holds now."""
    if run_id and os.sep not in run_id and not run_id.startswith("."):
        shutil.rmtree(os.path.join(runs_dir(), run_id), ignore_errors=True)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["probe"]:
            print(json.dumps(probe(json.load(sys.stdin))))
        elif argv[:1] == ["receive"]:
            print(json.dumps(receive(sys.stdin.buffer)))
        elif argv[:1] == ["forget"] and len(argv) == 2:
            forget(argv[1])
        else:
            emit(error=f"cas: unknown request {argv!r}")
            return 2
    except OSError as exc:
        emit(error=DISK_FULL.format(where=cache_dir()) if exc.errno == errno.ENOSPC else f"{cache_dir()}: {exc}")
        return 2
    except (ValueError, tarfile.TarError) as exc:
        emit(error=f"copying to the board failed: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

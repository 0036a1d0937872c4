"""One policy for the paths a command is given, checked before any work starts.

- No output file may be one of the run's inputs: `eval --results R --gt GT --json GT` would replace the
  ground truth with the record, `eval --json out/detections_....json` the detections with the record.
- Every path given must be a regular file or a folder: a FIFO blocks the reader forever, a device
  yields garbage.
- An output folder may not be an existing file, an output file may not be an existing folder, and the
  folder an output goes to must be writable, so a run never does its work and then fails to keep it.

Which arguments are outputs is declared here once (by their `dest`); everything else a command was
given that names an existing path is an input.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from harness.errors import HarnessError

# dest -> the flag users type (the house vocabulary, harness.cli.options). What each holds: --json a record
# file; --out a folder, except where FILE_OUTPUTS says a command's --out is one file.
OUTPUT_DESTS = {"json": "--json", "out": "--out"}
FILE_OUTPUTS = {"quantize": {"out"}}
# Files a command writes inside its output folder: a --json that matches one would be overwritten by it
# (eval's model runs write both; eval --merge the detections).
WRITES_IN_FOLDER = {
    "eval": ("detections_*.json", "detections_*.ckpt.jsonl"),
}


def check_paths(command: str, args: argparse.Namespace) -> None:
    """Refuse, in one line, paths that would hang, overwrite an input or fail after the work is done."""
    outputs = {dest: Path(value) for dest, value in _outputs(args)}
    inputs = [(dest, Path(value)) for dest, value in _path_values(args) if dest not in outputs]
    for dest, path in [*inputs, *outputs.items()]:
        _refuse_special(_flag(args, dest), path)
    for dest, out in outputs.items():
        flag = _flag(args, dest)
        is_file = dest == "json" or dest in FILE_OUTPUTS.get(command, ())
        for in_dest, src in inputs if is_file else ():  # a folder output only adds files of its own names
            if out.exists() and src.exists() and _same(out, src):
                raise HarnessError(f"{flag} {out} is also an input ({_flag(args, in_dest)}): writing it would destroy "
                                   "that input; write somewhere else")
        _check_writable(flag, out, is_file)
    folder = outputs.get("out") if "out" not in FILE_OUTPUTS.get(command, ()) else None
    record = outputs.get("json")
    if folder is not None and record is not None and _inside(record, folder):
        for pattern in WRITES_IN_FOLDER.get(command, ()):
            if fnmatch.fnmatch(record.name, pattern):
                raise HarnessError(f"--json {record} is a file `harness {command}` writes itself in {folder}; "
                                   "name the record something else")


def _flag(args: argparse.Namespace, dest: str) -> str:
    """The argument as typed (`--gt`, `MODEL`); main() records the spellings in `args.flags`."""
    return (getattr(args, "flags", None) or {}).get(dest) or OUTPUT_DESTS.get(dest) or dest

def _outputs(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    for dest in OUTPUT_DESTS:
        value = getattr(args, dest, None)
        if isinstance(value, str) and value:
            yield dest, value


def _path_values(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """Every string argument that names something that exists (paths; zoo names and numbers do not)."""
    for dest, value in vars(args).items():
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, str) and v and dest not in ("command", "flags") and os.path.lexists(v):
                yield dest, v


def _refuse_special(flag: str, path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreadable: the reader says so in its own words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise HarnessError(f"{flag} {path} is {kind}, not a regular file or folder; give a file")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().parent == folder.resolve()


def _check_writable(flag: str, path: Path, is_file: bool) -> None:
    """The output's kind matches what is there, and its nearest existing folder can be written."""
    if path.exists():
        if is_file and path.is_dir():
            raise HarnessError(f"{flag} {path} is a folder; {flag} wants a file name")
        if not is_file and not path.is_dir():
            raise HarnessError(f"{flag} {path} is a file; {flag} wants a folder (give a new or existing folder)")
    target = path.parent if is_file else path
    existing = target
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise HarnessError(f"{flag} {path}: {existing} is a file where a folder is wanted; choose another path")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise HarnessError(f"{flag} {path}: cannot write in {existing} (read-only or no permission); "
                           "choose a writable place")

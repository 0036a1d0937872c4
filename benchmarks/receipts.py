"""Receipts: every measured figure in README.md and docs/ comes from an artifact in benchmarks/results/.

    python benchmarks/receipts.py            # exit 1 and name each block that differs from its artifact
    python benchmarks/receipts.py --write    # re-render every marked block from its artifact

A measurement script (benchmarks/scaling.py, benchmarks/gate_noise.py, benchmarks/demo_time.py) writes its
artifact with `write_artifact`: the raw numbers plus what they were measured on (command, date, git commit,
cores, CPU model, load average before and after). A Markdown file quotes an artifact only between markers

    <!-- receipt: benchmarks/results/scaling.json table=scaling -->
    ...rendered by RENDERERS["scaling"] from the artifact...
    <!-- /receipt -->

and tests/test_receipts.py holds every block equal to its rendering, so a quoted figure cannot drift from
its artifact. A table whose load average was above the core count is labelled "measured under load".
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MARKDOWN = ("README.md", "docs")
BLOCK = re.compile(r"(<!-- receipt: (?P<path>\S+) table=(?P<table>[\w-]+) -->\n)(?P<body>.*?)(<!-- /receipt -->)",
                   re.S)
PACKAGES = ("ai-edge-litert", "tensorflow-cpu", "numpy", "faster-coco-eval")


# --------------------------------------------------------------------------------------------------
# Writing an artifact (the measurement scripts)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine() -> dict:
    """What the numbers were measured on: cores, CPU model, memory, Python and runtime versions."""
    from harness.records.host import cpu_model, memory_bytes

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "memory_bytes": memory_bytes(),
            "machine": platform.machine(), "python": platform.python_version(), "packages": versions}


def start(argv: list[str]) -> dict:
    """The artifact's provenance, taken before measuring: command, date, commit, machine, load average."""
    return {"command": " ".join(["python", *argv]), "date": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"), "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")), "machine": machine(),
            "load_average": {"start": list(os.getloadavg())}}


def write_artifact(path: str | Path, name: str, provenance: dict, data: object, wall_s: float | None) -> Path:
    """Write `{"artifact": name, ...provenance, "wall_s", "data"}` atomically; the load average at the end too."""
    from harness.common.fileio import write_json_atomic

    record = {"artifact": name, **provenance, "wall_s": wall_s, "data": data}
    record["load_average"] = {**provenance["load_average"], "end": list(os.getloadavg())}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, record, indent=1)

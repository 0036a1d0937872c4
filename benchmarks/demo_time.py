"""Time `harness demo` over the mirror and keep its report's accuracy and latency tables as an artifact.

    python benchmarks/demo_time.py --mirror ../shared/mirror --out benchmarks/results/demo.json

Runs the demo in a fresh process into a scratch directory (the same `harness demo` that `nox -s demo` runs,
without nox's install step), and writes a receipts artifact (benchmarks/receipts.py): the wall time of the
command and the rows of the report's tables/accuracy.csv and tables/latency.csv, from which the docs'
demo table is rendered.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from receipts import start, write_artifact

TABLES = ("accuracy", "latency")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mirror", default=os.environ.get("HARNESS_MIRROR") or "../shared/mirror",
                   help="the offline mirror (default: $HARNESS_MIRROR or ../shared/mirror)")
    p.add_argument("--out", required=True, help="the artifact to write, e.g. benchmarks/results/demo.json")
    args = p.parse_args(argv)
    provenance = start(sys.argv if argv is None else [__file__, *argv])
    with tempfile.TemporaryDirectory(prefix="harness-demo-time-") as tmp:
        cmd = [sys.executable, "-m", "harness", "demo", "--mirror", args.mirror, "--out", f"{tmp}/demo"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        data = {"harness_demo_wall_s": wall}
        for name in TABLES:
            with open(Path(tmp) / "demo" / "report" / "tables" / f"{name}.csv", newline="") as f:
                data[name] = list(csv.DictReader(f))
    write_artifact(args.out, "demo", provenance, data, wall)
    print(f"harness demo: {wall:.0f} s; artifact {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

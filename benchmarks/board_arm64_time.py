"""Time `nox -s board-arm64` (the emulated aarch64 board) and keep its outcome as a receipts artifact.

    python benchmarks/board_arm64_time.py --out benchmarks/results/board_arm64.json [--cold]

Runs the session as CI does and records its wall time, whether the board cache was warm (`--cold` empties
it first, as on a fresh machine) and pytest's closing line; the docs' board timing is rendered from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from receipts import start, write_artifact

CACHE = Path(os.environ.get("HARNESS_BOARD_CACHE") or Path.home() / ".cache" / "centernet-harness" / "boards")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the artifact to write, e.g. benchmarks/results/board_arm64.json")
    p.add_argument("--cold", action="store_true", help="empty the board cache first (default: use it as it is)")
    args = p.parse_args(argv)
    provenance = start(sys.argv if argv is None else [__file__, *argv])
    if args.cold:
        shutil.rmtree(CACHE, ignore_errors=True)
    warm = CACHE.is_dir() and any(CACHE.iterdir())
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "board-arm64"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    closing = [ln.strip("= ") for ln in proc.stdout.splitlines() if " passed" in ln or " failed" in ln][-1:]
    data = {"session_wall_s": wall, "cache_warm_at_start": warm, "exit_status": proc.returncode,
            "pytest": closing[0] if closing else None}
    write_artifact(args.out, "board_arm64", provenance, data, wall)
    print(f"nox -s board-arm64: {wall / 60:.1f} min, exit {proc.returncode}, {data['pytest']}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())

"""A record store of many commits on two boards, for the change-point gate and the dashboard tests: bench records
made with the real record code (tests/fake_records.py), each with the provenance block a CI run writes."""

from __future__ import annotations

import hashlib

import numpy as np
from fake_records import bench_record

MODEL = "mb3-centernet-int8"


def commit_sha(i: int) -> str:
    return hashlib.sha1(f"commit {i}".encode()).hexdigest()


def provenance(i: int, runner: str) -> dict:
    day, minute = divmod(i, 60 * 24)
    when = f"2026-01-{day + 1:02d}T{minute // 60:02d}:{minute % 60:02d}:00+00:00"
    return {"code": {"commit": commit_sha(i), "commit_time": when, "dirty": False, "branch": "main", "source": "git"},
            "harness": "0.1.0",
            "ci": {"system": "github-actions", "run_id": str(1000 + i), "job": "bench", "runner": runner,
                   "run_url": f"https://github.com/example/harness/actions/runs/{1000 + i}"}}


def history(commits: int, board: str, base_ms: float, step_at: int | None = None, step: float = 1.0,
            noise: float = 0.02, seed: int = 0, samples: int = 20) -> list[dict]:
    """`commits` bench records on `board`, p50 near `base_ms` with run-to-run noise `noise` (relative), and from
    commit `step_at` on (0-based, so commit 30 is the 31st run) `step` times slower."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(commits):
        level = base_ms * (step if step_at is not None and i >= step_at else 1.0) * (1 + noise * rng.standard_normal())
        s = (level * (1 + 0.03 * rng.standard_normal(samples))) / 1e3
        rec = bench_record(MODEL, list(s), fingerprint_of=board, created=provenance(i, board)["code"]["commit_time"])
        rec["provenance"] = provenance(i, f"{board}-runner")
        out.append(rec)
    return out

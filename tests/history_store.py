"""A record store of many commits on two boards, for the change-point gate and the dashboard tests: bench records
made with the real record code (tests/fake_records.py), each with the provenance block a CI run writes."""

from __future__ import annotations

import hashlib

import numpy as np
from fake_records import bench_record, with_samples

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


def history(commits: int, board: str, base_ms: float, steps: dict[int, float] | None = None, noise: float = 0.02,
            seed: int = 0, samples: int = 20, start: int = 0) -> list[dict]:
    """Bench records of commits `start` .. `start + commits - 1` on `board`, p50 near `base_ms` with run-to-run
    noise `noise` (relative); from commit i of `steps` {i: factor} on (0-based: commit 30 is the 31st run) the
    level is that factor times what it was."""
    rng = np.random.default_rng(seed)
    template = bench_record(MODEL, [base_ms / 1e3] * samples, fingerprint_of=board)
    out = []
    for i in range(start, start + commits):
        level = base_ms * float(np.prod([f for at, f in (steps or {}).items() if i >= at]))
        level *= 1 + noise * rng.standard_normal()
        s = (level * (1 + 0.03 * rng.standard_normal(samples))) / 1e3
        rec = with_samples(template, {"model_only": s, "end_to_end": s * 1.2})
        rec["created"] = provenance(i, board)["code"]["commit_time"]
        rec["provenance"] = provenance(i, f"{board}-runner")
        out.append(rec)
    return out

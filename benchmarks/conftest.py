"""Shared fixtures for the pytest-benchmark suites (run: `nox -s bench` or `pytest benchmarks`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline mirror: $HARNESS_MIRROR, else ../shared/mirror beside the repository."""
    root = Path(os.environ.get("HARNESS_MIRROR") or REPO.parent / "shared" / "mirror")
    if not (root / "coco").is_dir():
        pytest.fail(f"benchmarks need the mirror at {root} (set HARNESS_MIRROR)")
    return root

"""Shared fixtures: where the read-only mirror of real COCO data and models lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# $HARNESS_MIRROR, else ../shared/mirror beside the repository (the layout these machines use).
MIRROR_DIR = Path(os.environ.get("HARNESS_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "mirror")


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The mirror root (read-only: tests refer to its files, never copy them into the repository)."""
    if not (MIRROR_DIR / "coco" / "annotations" / "instances_val2017.json").is_file():
        if os.environ.get("CI"):  # in CI a missing mirror is a broken setup, not a reason to skip
            pytest.fail(f"no mirror at {MIRROR_DIR} (set HARNESS_MIRROR)")
        pytest.skip(f"no mirror at {MIRROR_DIR} (set HARNESS_MIRROR)")
    return MIRROR_DIR


# tests/synthetic.py (builders of synthetic COCO roots and seed-contract models) is imported by name
# from the test modules, whatever pytest's import mode.
import sys  # noqa: E402

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With CI=true every test runs or fails: a skip there (a missing mirror, oracle, browser or runtime) is a
    broken setup, reported as a failure instead of a quiet "s"."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI=true, where every test must run: {reason}"

"""Where the oracle answers live (beside the mirror), and optional reference libraries, for the tests.

Under CI a missing oracle folder or reference library is a broken setup and fails; elsewhere it skips.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest
from conftest import MIRROR_DIR

ORACLES_DIR = MIRROR_DIR.parent / "oracles"


def oracle_dir(name: str) -> Path:
    d = ORACLES_DIR / name
    if not (d / "expected.json").is_file():
        msg = f"no oracle answers at {d} (they live beside the mirror; set HARNESS_MIRROR)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


def need(module: str) -> ModuleType:
    """Import a reference library the test compares against (a test dependency)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is a test dependency: pip install -e '.[test]'")
        pytest.skip(f"{module} not installed")

"""With CI=true a test runs or fails, never skips (tests/conftest.py turns a skip into a failure there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def test_a_skip_fails_under_ci_and_stays_a_skip_elsewhere(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text("import pytest\n\ndef test_needs_a_browser():\n"
                                            "    pytest.skip('no Chromium installed')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_skips.py")]
    local = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    ci = subprocess.run(cmd, cwd=tmp_path, env={**env, "CI": "true"}, capture_output=True, text=True)
    assert local.returncode == 0 and "1 skipped" in local.stdout
    assert ci.returncode == 1 and "skipped under CI=true" in ci.stdout and "no Chromium installed" in ci.stdout

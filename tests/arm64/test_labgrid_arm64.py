"""End to end through a board farm: `harness bench mb3-centernet-int8 --on labgrid:PLACE` where the place's
NetworkService is the sshd of the emulated arm64 board, on a labgrid coordinator and exporter on 127.0.0.1.

Expected values from outside the harness: the record's host.machine is what the board's kernel reports under
qemu (aarch64, not this host's machine); who holds the place is the coordinator's own record.

Needs the emulated board (tests/emulated_board.py), the SSH test server (tests/sshd.py) and the `--on`
runner (harness/boards/targets.py): skipped, naming them, only while those are not merged.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import uuid
from importlib.util import find_spec
from pathlib import Path

import pytest

NEEDED = ("emulated_board", "sshd", "harness.boards.targets")
MISSING = [name for name in NEEDED if find_spec(name) is None]
if MISSING:
    pytest.skip(f"not merged yet: {', '.join(MISSING)}", allow_module_level=True)

import emulated_board  # noqa: E402
import sshd  # noqa: E402
from labgrid_farm import NetworkService, have_labgrid, labgrid_farm  # noqa: E402

pytestmark = pytest.mark.arm64
REPO = Path(__file__).resolve().parents[2]
PLACE = "arm64-board"
BOARD_PYTHON = f"{emulated_board.VENV}/bin/python3"


@pytest.fixture(scope="module")
def board_sshd():
    """sshd running inside the emulated arm64 board's root (as root), trusted by the test's ssh_config."""
    root = emulated_board.arm64_root("litert")
    folder = root / "tmp" / f"labgrid-sshd-{uuid.uuid4().hex[:8]}"
    server = sshd.start_sshd(folder, root=root, board_prefix=emulated_board.board_argv(root, []), user="root",
                               session_env=emulated_board.SESSION_ENV)
    server.trust()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def farm(tmp_path, board_sshd):
    if not have_labgrid():
        pytest.fail("labgrid is not installed: pip install '.[farm]' (the test extra has it)")
    with labgrid_farm(tmp_path / "farm", {"board-1": NetworkService(board_sshd.port, username="root")}) as f:
        f.add_place(PLACE, "board-1")
        yield f


def harness(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=1800)


def test_bench_runs_on_the_board_behind_a_labgrid_place_and_releases_it(farm, board_sshd, tmp_path, mirror):
    out = tmp_path / "bench.json"
    env = {**board_sshd.env(), "LG_COORDINATOR": farm.address}
    proc = harness(["bench", "mb3-centernet-int8", "--on", f"labgrid:{PLACE}?python={BOARD_PYTHON}",
                    "--min-count", "5", "--min-duration", "0", "--e2e-min-count", "2", "--e2e-min-duration", "0",
                    "--warmup", "1", "--json", str(out), "--quiet"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["host"]["machine"] == "aarch64" != platform.machine()
    assert farm.holder(PLACE) is None
    assert f"{PLACE}: place acquired by " in farm.coordinator_log()


def test_a_failed_run_on_a_place_still_releases_it(farm, board_sshd, tmp_path):
    env = {**board_sshd.env(), "LG_COORDINATOR": farm.address}
    proc = harness(["bench", "mb3-centernet-int8", "--on", f"labgrid:{PLACE}?python=/no/such/python3",
                    "--json", str(tmp_path / "bench.json"), "--quiet"], env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("harness: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{PLACE}: place acquired by " in farm.coordinator_log()  # it did get the board ...
    assert farm.holder(PLACE) is None  # ... and gave it back

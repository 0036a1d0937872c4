"""`harness bench|eval --on ssh://root@127.0.0.1:PORT` where the sshd runs INSIDE the emulated arm64 board.

Expected values from outside the SSH path: the record's host.machine is what the board's kernel reports under
qemu (aarch64, not this machine's); the detections are those of the same eval run inside the board by its own
Python (chroot, no SSH) with this source; the board's store on disk says what was copied.

The board: tests/emulated_board.py's `arm64_root("litert")`. Its sshd sets QEMU_CPU in every session
(emulated_board.SESSION_ENV), as the board's own chroot commands do.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import emulated_board
import pytest
from conftest import MIRROR_DIR
from sshd import start_sshd

REPO = Path(__file__).resolve().parents[2]
MODEL = "mb3-centernet-int8"
BOARD_PYTHON = "/opt/venv/bin/python3"
IMAGES = 4

pytestmark = pytest.mark.arm64


@pytest.fixture(scope="module")
def board():
    """(root, prefix): the emulated board's root and the host command prefix that runs a program inside it."""
    root = emulated_board.arm64_root("litert")
    return root, emulated_board.board_argv(root, [])


@pytest.fixture(scope="module")
def server(board):
    root, prefix = board
    folder = root / "tmp" / f"ssh-test-{uuid.uuid4().hex[:8]}"
    s = start_sshd(folder, root=root, board_prefix=prefix, user="root", timeout=120,
                   session_env=emulated_board.SESSION_ENV)
    s.trust()
    yield s
    s.stop()
    shutil.rmtree(folder, ignore_errors=True)


def harness(argv: list, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": str(REPO), "HARNESS_MIRROR": str(MIRROR_DIR)}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, argv)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=1800)


def test_bench_on_the_arm64_board_over_ssh_is_the_boards(server, tmp_path: Path, mirror) -> None:
    out = tmp_path / "bench.json"
    proc = harness(["bench", MODEL, "--on", server.spec(BOARD_PYTHON), "--min-count", 3, "--min-duration", 0,
                    "--e2e-min-count", 2, "--e2e-min-duration", 0, "--warmup", 1, "--json", out, "--quiet"],
                   server.env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["host"]["machine"] == "aarch64" != platform.machine()
    assert record["board"]["machine"] == "aarch64"


def test_eval_over_ssh_is_the_eval_inside_the_board_and_a_second_run_copies_nothing(
        board, server, tmp_path: Path, mirror) -> None:
    root, prefix = board
    runs = []
    for n in (1, 2):
        proc = harness(["eval", MODEL, "--max-images", IMAGES, "--quiet", "--on", server.spec(BOARD_PYTHON),
                        "--out", tmp_path / f"on{n}", "--json", tmp_path / f"on{n}.json", "--ci-resamples", 0],
                       server.env())
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(json.loads((tmp_path / f"on{n}.json").read_text()))
    assert runs[0]["host"]["machine"] == "aarch64"
    assert runs[1]["board"]["copied"]["files"] == 0 and runs[1]["board"]["copied"]["already_there"] == 3 + IMAGES
    # The same eval inside the board: its own Python, this source, no SSH.
    inside = root / "tmp" / f"eval-{uuid.uuid4().hex[:8]}"
    shutil.copytree(REPO / "harness", inside / "src" / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    at = "/" + str(inside.relative_to(root))
    try:
        env = [f"PYTHONPATH={at}/src", f"HARNESS_MIRROR={MIRROR_DIR.resolve()}"]
        argv = ["eval", MODEL, "--max-images", str(IMAGES), "--workers", "1", "--quiet", "--ci-resamples", "0",
                "--out", f"{at}/out"]
        proc = subprocess.run([*prefix, "/usr/bin/env", *env, BOARD_PYTHON, "-m", "harness", *argv],
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        name = f"detections_{MODEL}_native.json"
        there = (inside / "out" / name).read_bytes()
        assert (tmp_path / "on1" / name).read_bytes() == there == (tmp_path / "on2" / name).read_bytes()
    finally:
        shutil.rmtree(inside, ignore_errors=True)


def test_a_dropped_connection_mid_eval_on_the_board_resumes_and_gives_the_same_detections(
        server, tmp_path: Path, mirror) -> None:
    """The connection is cut (the ssh client killed) once the board's checkpoint holds an image; the same command
    then resumes from it, and its detections are an uninterrupted run's."""
    images = 6
    argv = ["eval", MODEL, "--max-images", images, "--quiet", "--on", server.spec(BOARD_PYTHON), "--out",
            tmp_path / "on", "--json", tmp_path / "on.json", "--ci-resamples", 0]
    env = {**server.env(), "PYTHONPATH": str(REPO), "HARNESS_MIRROR": str(MIRROR_DIR)}
    first = subprocess.Popen([sys.executable, "-m", "harness", *map(str, argv)], env=env, cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs, done, deadline = server.cache / "centernet-harness" / "runs", 0, time.monotonic() + 600
    while done < 1 and first.poll() is None and time.monotonic() < deadline:
        lines = [len(p.read_text().splitlines()) - 1 for p in runs.glob("eval-*/detections.ckpt.jsonl")]
        done = max(lines, default=0)
        time.sleep(0.05)
    assert 1 <= done < images, f"{done} images checkpointed before the cut"
    for pid in children(first.pid, "ssh"):
        os.kill(pid, signal.SIGKILL)  # the connection drops
    _, err = first.communicate(timeout=120)
    assert first.returncode == 2 and "connection dropped" in err and "resume" in err, err
    again = harness(argv, server.env())
    assert again.returncode == 0, again.stderr[-3000:]
    record = json.loads((tmp_path / "on.json").read_text())
    assert record["resumed_images"] >= done and record["board"]["copied"]["files"] == 0
    whole = harness([*argv[:-6], "--out", tmp_path / "whole", "--json", tmp_path / "whole.json", "--ci-resamples", 0,
                     "--restart"], server.env())
    assert whole.returncode == 0, whole.stderr[-3000:]
    name = f"detections_{MODEL}_native.json"
    assert (tmp_path / "on" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def children(pid: int, program: str) -> list[int]:
    """The processes PROGRAM whose parent is PID (from /proc)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name == program and int(rest[1]) == pid:
            found.append(int(d.name))
    return found

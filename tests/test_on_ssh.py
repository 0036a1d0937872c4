"""`harness bench|eval|detect --on ssh://...` against real sshd servers on 127.0.0.1 (tests/sshd.py).

The board is this machine reached over SSH, its Python a venv with numpy, Pillow and ai-edge-litert only (no
harness installed, no TensorFlow, no COCO engine): the bundle must run there on its own. Expected values come
from outside the SSH path: a local eval's detections file, the server's host key as ssh-keygen made it, the
board venv's own Python and host fingerprint, the files on the board's disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MIRROR_DIR as MIRROR
from sshd import board_venv, start_sshd

REPO = Path(__file__).resolve().parents[1]
MODEL = "mb3-centernet-int8"
QUICK_BENCH = ["--min-count", "3", "--min-duration", "0.1", "--e2e-min-count", "3", "--e2e-min-duration", "0.1",
               "--warmup", "1"]

pytestmark = pytest.mark.skipif(not (Path("/usr/sbin/sshd").exists() and shutil.which("ssh") and shutil.which("uv")
                                     and MIRROR.is_dir()), reason="needs openssh-server, ssh, uv and the mirror")


def harness(argv: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": str(REPO), "HARNESS_MIRROR": str(MIRROR)}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, argv)], env=env, cwd=REPO, capture_output=True,
                          text=True, **kw)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("harness: error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def board_python() -> Path:
    return board_venv()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_sshd(tmp_path_factory.mktemp("sshd"))
    s.trust()
    yield s
    s.stop()


def board_store(server) -> list[Path]:
    cas = server.cache / "centernet-harness" / "cas"
    return sorted(p for p in cas.iterdir() if not p.name.startswith(".")) if cas.is_dir() else []


def test_a_bad_target_is_one_line(tmp_path: Path) -> None:
    for spec in ("ftp://board", "ssh://board:notaport", "ssh://board?pyhton=/x", "labgrid:"):
        line = one_error_line(harness(["bench", MODEL, "--random", "--on", spec], dict(os.environ)))
        assert "--on" in line


def test_an_unknown_host_key_is_refused_and_accepted_with_the_flag(tmp_path: Path, board_python: Path) -> None:
    s = start_sshd(tmp_path / "sshd")  # known_hosts empty: the client has never seen this server
    try:
        argv = ["bench", MODEL, "--random", *QUICK_BENCH, "--on", s.spec(str(board_python))]
        line = one_error_line(harness(argv, s.env()))
        assert "host key is not in known_hosts" in line and "--accept-host-key" in line
        assert s.known_hosts.read_text() == ""
        proc = harness([*argv, "--accept-host-key"], s.env())
        assert proc.returncode == 0, proc.stderr
        # What ssh recorded is the key ssh-keygen made for the server (hashed host names aside).
        assert s.host_key_line().split(" ", 1)[1] in s.known_hosts.read_text()
    finally:
        s.stop()


def test_bench_record_is_the_boards(tmp_path: Path, server, board_python: Path) -> None:
    out = tmp_path / "bench.json"
    ci = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "team/repo",
          "GITHUB_RUN_ID": "4242", "RUNNER_NAME": "imx-lab-runner"}  # the host is a CI job; the board is not
    proc = harness(["bench", MODEL, "--random", *QUICK_BENCH, "--on", server.spec(str(board_python)), "--json", out],
                   {**server.env(), **ci})
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert record["provenance"]["ci"]["run_url"] == "https://github.example/team/repo/actions/runs/4242"
    assert record["provenance"]["ci"]["runner"] == "imx-lab-runner"
    # The board venv describes itself, outside the SSH path.
    probe = subprocess.run([str(board_python), "-c", "import json, platform; from harness.records import host; "
                            "print(json.dumps([host.describe()['fingerprint'], platform.python_version()]))"],
                           env={"PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=True)
    fingerprint, version = json.loads(probe.stdout)
    assert record["kind"] == "bench" and record["host"]["fingerprint"] == fingerprint
    assert record["host"]["python"] == version == record["versions"]["python"]
    assert "faster-coco-eval" not in record["versions"] and "tensorflow" not in record["versions"]
    assert record["board"]["python"] == str(board_python)
    assert record["command"][:2] == ["bench", MODEL] and record["model"]["name"] == MODEL


def test_eval_over_ssh_is_a_local_evals_detections_and_a_second_run_copies_nothing(
        tmp_path: Path, server, board_python: Path) -> None:
    shutil.rmtree(server.cache / "centernet-harness", ignore_errors=True)
    spec = server.spec(str(board_python))
    local = harness(["eval", MODEL, "--max-images", 8, "--workers", 1, "--quiet", "--out", tmp_path / "local",
                     "--json", tmp_path / "local.json", "--ci-resamples", 0], server.env())
    assert local.returncode == 0, local.stderr
    runs = []
    for n in (1, 2):
        proc = harness(["eval", MODEL, "--max-images", 8, "--quiet", "--on", spec, "--out", tmp_path / f"on{n}",
                        "--json", tmp_path / f"on{n}.json", "--ci-resamples", 0, "--store", tmp_path / "runs.sqlite"],
                       server.env())
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads((tmp_path / f"on{n}.json").read_text()))
        if n == 1:  # what the board's store holds after the first run: the bundle, the job, the model, 8 images
            on_disk = board_store(server)
    name = f"detections_{MODEL}_native.json"
    local_rec = json.loads((tmp_path / "local.json").read_text())
    for n, rec in enumerate(runs, start=1):
        assert (tmp_path / f"on{n}" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
        assert rec["results"]["stats"] == local_rec["results"]["stats"]
        assert rec["results"]["errors"] == local_rec["results"]["errors"]
        assert rec["run_key"] == local_rec["run_key"] and rec["dataset"] == local_rec["dataset"]
    assert len(on_disk) == 1 + 1 + 1 + 8
    assert runs[0]["board"]["copied"] == {"files": 11, "bytes": sum(p.stat().st_size for p in on_disk),
                                          "already_there": 0}
    assert runs[1]["board"]["copied"] == {"files": 0, "bytes": 0, "already_there": 11}
    assert not list((server.cache / "centernet-harness" / "runs").iterdir())  # fetched runs are cleaned up
    store = harness(["store", "list", tmp_path / "runs.sqlite"], server.env())
    assert store.returncode == 0 and store.stdout.count("eval") >= 2, store.stdout


def _pids(match) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if match([a.decode(errors="replace") for a in argv if a], ppid):
                found.append(int(d.name))
    return found


def test_a_killed_connection_leaves_the_checkpoint_and_the_same_command_resumes(
        tmp_path: Path, server, board_python: Path) -> None:
    images = 12
    argv = ["eval", MODEL, "--max-images", images, "--threads", 1, "--on", server.spec(str(board_python)),
            "--out", tmp_path / "on", "--json", tmp_path / "on.json", "--ci-resamples", 0]
    env = {**server.env(), "PYTHONPATH": str(REPO), "HARNESS_MIRROR": str(MIRROR)}
    before = set(_pids(lambda a, _: True))
    first = subprocess.Popen([sys.executable, "-m", "harness", *map(str, argv)], env=env, cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    board = []
    deadline = time.monotonic() + 120
    while not board and time.monotonic() < deadline:  # catch the board process as soon as it starts
        board = [p for p in _pids(lambda a, _: "--tether" in a and a[0] == str(board_python)) if p not in before]
        time.sleep(0.01)
    assert board, "the board process never started"
    try:
        os.kill(board[0], signal.SIGSTOP)
        runs, done = server.cache / "centernet-harness" / "runs", 0
        while done < 2 and time.monotonic() < deadline:  # let it run in short slices until two images are done
            os.kill(board[0], signal.SIGCONT)
            time.sleep(0.05)
            os.kill(board[0], signal.SIGSTOP)
            ckpt = [len(p.read_text().splitlines()) - 1 for p in runs.glob("eval-*/detections.ckpt.jsonl")]
            done = ckpt[0] if ckpt else 0
        assert 2 <= done < images
        client = _pids(lambda a, ppid: ppid == first.pid and a[0] == "ssh" and any("--tether" in x for x in a))
        assert client
        os.kill(client[0], signal.SIGKILL)  # the connection drops
    finally:
        os.kill(board[0], signal.SIGCONT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 2 and "connection dropped" in err and "resume" in err, err
    gone = time.monotonic() + 20
    while Path(f"/proc/{board[0]}").exists() and time.monotonic() < gone:  # it dies with its session
        time.sleep(0.1)
    assert not Path(f"/proc/{board[0]}").exists()
    again = harness(argv, server.env())
    assert again.returncode == 0, again.stderr
    record = json.loads((tmp_path / "on.json").read_text())
    assert record["resumed_images"] >= done
    local = harness(["eval", MODEL, "--max-images", images, "--workers", 1, "--quiet", "--out", tmp_path / "local",
                     "--ci-resamples", 0], server.env())
    assert local.returncode == 0, local.stderr
    name = f"detections_{MODEL}_native.json"
    assert (tmp_path / "on" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_several_boards_run_in_parallel_one_record_each(tmp_path: Path, server, board_python: Path) -> None:
    other = start_sshd(tmp_path / "sshd2")
    other.trust()
    try:
        env = {**server.env()}
        config = tmp_path / "ssh_config"  # one client config that knows both servers' keys
        config.write_text((server.folder / "ssh_config").read_text().replace(
            str(server.known_hosts), str(tmp_path / "known_hosts")) + f"  IdentityFile {other.folder}/client_key\n")
        (tmp_path / "known_hosts").write_text(server.host_key_line() + "\n" + other.host_key_line() + "\n")
        env["HARNESS_SSH_CONFIG"] = str(config)
        specs = [server.spec(str(board_python)), other.spec(str(board_python))]
        proc = harness(["bench", MODEL, "--random", *QUICK_BENCH, "--on", specs[0], "--on", specs[1], "--json",
                        tmp_path / "run.json"], env)
        assert proc.returncode == 0, proc.stderr
        for s in (server, other):
            record = json.loads((tmp_path / f"run.{s.user}@127.0.0.1_{s.port}.json").read_text())
            assert record["board"]["address"] == f"{s.user}@127.0.0.1:{s.port}"
    finally:
        other.stop()


def test_a_board_without_what_it_needs_is_one_line(tmp_path: Path, server) -> None:
    bare = tmp_path / "bare"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(bare)], check=True)
    line = one_error_line(harness(["bench", MODEL, "--random", "--on", server.spec(str(bare / "bin" / "python"))],
                                  server.env()))
    assert "has no numpy, Pillow" in line
    line = one_error_line(harness(["bench", MODEL, "--random", "--on", server.spec("/nonexistent/python3")],
                                  server.env()))
    assert "no Python at '/nonexistent/python3'" in line and "?python=" in line
    line = one_error_line(harness(["bench", MODEL, "--random", "--on", "ssh://127.0.0.1:1"], server.env()))
    assert "cannot reach the board" in line


def test_detect_on_a_board_brings_back_the_pictures(tmp_path: Path, server, board_python: Path) -> None:
    images = sorted((MIRROR / "coco" / "val2017").glob("*.jpg"))[:2]
    proc = harness(["detect", MODEL, *images, "--on", server.spec(str(board_python)), "--out", tmp_path / "d",
                    "--print-json", "--quiet"], server.env())
    assert proc.returncode == 0, proc.stderr
    here = harness(["detect", MODEL, *images, "--out", tmp_path / "h", "--print-json"], server.env())
    got, want = json.loads(proc.stdout), json.loads(here.stdout)
    assert [i["detections"] for i in got["images"]] == [i["detections"] for i in want["images"]]
    assert [i["image"] for i in got["images"]] == [str(p) for p in images]
    assert all(Path(i["annotated"]).is_file() and Path(i["annotated"]).parent == tmp_path / "d" for i in got["images"])


def test_the_bundle_is_deterministic_and_holds_only_the_measuring_layers() -> None:
    from harness.boards.bundle import build_bundle

    a, b = build_bundle.__wrapped__(), build_bundle.__wrapped__()
    assert a.sha256 == b.sha256 and a.data == b.data
    layers = {name.split("/")[1] for name in a.modules if name.count("/") > 1}
    assert layers == {"common", "models", "scoring", "records", "measure"}
    assert {"__main__.py", "harness/__init__.py", "harness/errors.py", "harness/measure/job.py"} <= set(a.modules)

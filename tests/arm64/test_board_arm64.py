"""eval, bench and detect on an emulated aarch64 board (tests/emulated_board.py), against the same eval on x86.

Two boards: "litert" (the project's `.[board]` extra, ai-edge-litert) and "bsp" (tflite-runtime 2.14 with the
distro's numpy 1.24, as an i.MX Yocto image ships it). On each: the records say aarch64 and the runtime, no
heavy package is imported, and the float model's detections agree with x86's (tests/detection_agreement.py).
Minutes under emulation: run by `nox -s board-arm64`, left out of the `tests` session by the arm64 marker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import emulated_board
import pytest
from board import HEAVY, BoardRun, board_check_args, parse_board_check
from detection_agreement import agreement

from harness.cli import main

pytestmark = pytest.mark.arm64

IMAGES = 8  # 27 detections over 0.3 for the float model: enough for the 95% rule to mean something
RUNTIME = {"litert": "ai-edge-litert", "bsp": "tflite-runtime"}
WATCH = (*HEAVY, "pycocotools")  # eval's default engine is faster-coco-eval: the reference engine stays out
QUICK_BENCH = ["--warmup", "1", "--min-count", "3", "--min-duration", "0", "--e2e-min-count", "2",
               "--e2e-min-duration", "0"]
DETECT_IMAGES = ("000000000139.jpg", "000000000785.jpg")


class Board:
    """One variant's root and a scratch folder inside it, seen at WORK from the board and at host_dir here."""

    WORK = "/tmp/arm64-tests"

    def __init__(self, variant: str):
        self.variant = variant
        self.root = emulated_board.arm64_root(variant)
        self.host_dir = Path(f"{self.root}{self.WORK}")
        shutil.rmtree(self.host_dir, ignore_errors=True)
        self.host_dir.mkdir(parents=True)

    def harness(self, *argv: object) -> BoardRun:
        """`harness ARGV` in the board's venv, with the packages of WATCH it imported."""
        proc = emulated_board.run_in_board(self.root, ["python", *board_check_args(argv, WATCH)], cwd=self.WORK,
                                           timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        run = parse_board_check(proc.stdout)
        assert run.rc == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return run

    def read(self, name: str):
        return json.loads((self.host_dir / name).read_text())


@pytest.fixture(scope="module", params=list(RUNTIME))
def board(request) -> Board:
    try:
        return Board(request.param)
    except emulated_board.BoardUnavailable as exc:
        pytest.skip(str(exc))  # under CI=true tests/conftest.py turns this into a failure


@pytest.fixture(scope="module")
def board_evals(board, mirror) -> dict[str, tuple[BoardRun, dict, list]]:
    """eval of the f32 and int8 models on the board: the check run, the record, the detections."""
    out = {}
    for model in ("mb3-centernet-f32", "mb3-centernet-int8"):
        run = board.harness("eval", model, "--max-images", IMAGES, "--workers", 1, "--quiet", "--ci-resamples", 0,
                            "--out", f"{board.WORK}/{model}", "--json", f"{board.WORK}/{model}.json")
        record = board.read(f"{model}.json")
        detections = json.loads(Path(f"{board.root}{record['detections_file']}").read_text())
        out[model] = (run, record, detections)
    return out


@pytest.fixture(scope="module")
def x86_f32(mirror, tmp_path_factory) -> list:
    """The same float eval on this (x86) machine, in the test process."""
    out = tmp_path_factory.mktemp("x86")
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--max-images", str(IMAGES), "--workers", "1",
                 "--quiet", "--ci-resamples", "0", "--out", str(out), "--json", str(out / "rec.json")]) == 0
    record = json.loads((out / "rec.json").read_text())
    assert record["host"]["machine"] == "x86_64"
    return json.loads(Path(record["detections_file"]).read_text())


def test_eval_runs_on_aarch64_with_the_variants_runtime_and_no_heavy_imports(board, board_evals):
    for model, (run, record, detections) in board_evals.items():
        assert run.heavy == [], model
        assert record["host"]["machine"] == "aarch64", model
        assert record["backend"]["runtime"] == RUNTIME[board.variant], model
        assert record["versions"]["numpy"] == "1.24.2" and record["versions"]["Pillow"] == "9.4.0", model  # Debian's
        assert record["results"]["image_count"] == IMAGES and detections, model


def test_float_detections_agree_with_x86(board_evals, x86_f32):
    arm = board_evals["mb3-centernet-f32"][2]
    forward, backward = agreement(x86_f32, arm), agreement(arm, x86_f32)
    print(f"x86 -> aarch64: {forward.matched}/{forward.total}; aarch64 -> x86: {backward.matched}/{backward.total}")
    assert forward.total >= 20  # the issue author counted 27 on these 8 images
    assert forward.fraction >= 0.95 and backward.fraction >= 0.95


def test_bench_on_aarch64(board, mirror):
    run = board.harness("bench", "mb3-centernet-int8", *QUICK_BENCH, "--json", f"{board.WORK}/bench.json")
    record = board.read("bench.json")
    assert run.heavy == []
    assert record["kind"] == "bench" and record["host"]["machine"] == "aarch64"
    assert record["settings"]["runtime"] == RUNTIME[board.variant]
    assert record["phases"]["model_only"]["stats"]["count"] >= 3
    assert "time from process start to first inference:" in run.stdout


def test_detect_on_aarch64(board, mirror):
    # The board sees the mirror at its resolved path (a symlinked ../shared is bind-mounted where it leads).
    images = [mirror.resolve() / "coco" / "val2017" / name for name in DETECT_IMAGES]
    run = board.harness("detect", "mb3-centernet-f32", *images, "--out", f"{board.WORK}/detect", "--print-json")
    printed = json.loads(run.stdout)
    assert run.heavy == []
    assert printed == board.read("detect/detections_mb3-centernet-f32.json")
    assert len(printed["images"]) == 2
    assert all((board.host_dir / "detect" / f"{Path(n).stem}.mb3-centernet-f32.jpg").is_file() for n in DETECT_IMAGES)


def test_no_mounts_left_behind(board):
    """Every command ran in its own mount namespace: nothing under the cache folder is mounted afterwards."""
    with pytest.raises(subprocess.TimeoutExpired):  # a command killed by its timeout
        emulated_board.run_in_board(board.root, ["sleep", "30"], timeout=2)
    assert emulated_board.run_in_board(board.root, ["false"]).returncode == 1
    mounted = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    assert not [m for m in mounted if m.startswith(str(emulated_board.cache_dir()))]

"""The one policy for paths a command writes: checked before any work, faults in one line, inputs never lost.

Each case names a path that would overwrite an input, hang a reader or fail after the work was done, and
requires exit 2, one `harness: error:` line that names the problem, no traceback, and every input file
byte for byte as it was. The write faults (a full disk, a read-only folder) are real: a 64 KiB tmpfs and a
read-only bind mount, which need root (CI runs as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main

KNOWN = "coco/known_answer"
GT = "instances_val2014_100.json"
RESULTS = "instances_val2014_fakebbox100_results.json"


@pytest.fixture
def pair(tmp_path: Path, mirror: Path) -> tuple[Path, Path]:
    """Copies of cocoapi's known-answer ground truth and results, which the cases must leave untouched."""
    gt, res = tmp_path / "gt.json", tmp_path / "results.json"
    shutil.copy(mirror / KNOWN / GT, gt)
    shutil.copy(mirror / KNOWN / RESULTS, res)
    return gt, res


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def assert_one_line(rc: int, err: str, *fragments: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_record_naming_the_ground_truth_is_refused_and_the_ground_truth_kept(pair, capsys) -> None:
    gt, res = pair
    before = gt.read_bytes()
    rc, err = run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", gt)
    assert_one_line(rc, err, "--json", "is also an input", "--gt")
    assert gt.read_bytes() == before


def test_a_record_naming_the_results_through_another_spelling_is_refused(pair, tmp_path, capsys) -> None:
    gt, res = pair
    before = res.read_bytes()
    (tmp_path / "sub").mkdir()
    rc, err = run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", tmp_path / "sub" / ".." / res.name)
    assert_one_line(rc, err, "is also an input", "--results")
    assert res.read_bytes() == before


def test_eval_refuses_a_record_named_like_its_own_detections_before_any_image(mirror, tmp_path, capsys,
                                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, err = run_cli(capsys, "eval", "mb3-centernet-f32", "--mirror", mirror, "--max-images", 2, "--out", "out",
                      "--json", "out/detections_mb3-centernet-f32_native.json", "--quiet")
    assert_one_line(rc, err, "--json", "writes itself")
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize("flag", ["--results", "--gt"])
def test_a_fifo_as_input_is_refused_at_once(pair, tmp_path, flag) -> None:
    """A reader opening a FIFO waits for a writer forever; the check must answer without opening it."""
    gt, res = pair
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    argv = {"--results": ["--gt", gt, "--results", fifo], "--gt": ["--gt", fifo, "--results", res]}[flag]
    proc = subprocess.run([sys.executable, "-m", "harness", "eval", *map(str, argv)], capture_output=True,
                          text=True, timeout=120)
    assert_one_line(proc.returncode, proc.stderr, flag, "is a FIFO")


def test_an_output_folder_that_is_a_file_is_refused_and_the_file_kept(pair, tmp_path, capsys) -> None:
    gt, res = pair
    record = tmp_path / "run.json"
    run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", record)
    before = record.read_bytes()
    rc, err = run_cli(capsys, "report", record, "--out", record)
    assert_one_line(rc, err, "--out", "is a file", "wants a folder")
    assert record.read_bytes() == before


def test_a_record_naming_a_folder_is_refused(pair, tmp_path, capsys) -> None:
    gt, res = pair
    (tmp_path / "records").mkdir()
    rc, err = run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", tmp_path / "records")
    assert_one_line(rc, err, "--json", "is a folder")


def test_a_record_under_a_file_used_as_a_folder_is_refused(pair, tmp_path, capsys) -> None:
    gt, res = pair
    rc, err = run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", tmp_path / "results.json" / "r.json")
    assert_one_line(rc, err, "is a file where a folder is wanted")


# --------------------------------------------------------------------------------------------------
# Real write faults (root: mounts)

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts need root")


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[callable]:
    made: list[Path] = []

    def mount(*args: str, at: Path) -> Path:
        at.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(at)], check=True)
        made.append(at)
        return at

    yield mount
    for at in reversed(made):
        subprocess.run(["umount", "-l", str(at)], check=False)


@needs_root
def test_a_full_disk_is_one_line_and_the_previous_record_survives(pair, tmp_path, capsys, mounted) -> None:
    gt, res = pair
    disk = mounted("-t", "tmpfs", "-o", "size=64k", "tmpfs", at=tmp_path / "disk")
    record = disk / "run.json"
    record.write_text('{"previous": true}\n')
    with open(disk / "filler", "wb", buffering=0) as f:  # fill the disk to the last block
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    rc, err = run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", record)
    assert_one_line(rc, err, "run.json", "no space left")
    assert record.read_text() == '{"previous": true}\n'
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "run.json"]  # no temporary file left


@needs_root
def test_a_record_in_a_read_only_folder_is_refused_before_the_work(pair, tmp_path, capsys, mounted) -> None:
    gt, res = pair
    (tmp_path / "ro").mkdir()
    ro = mounted("--bind", "-o", "ro", str(tmp_path / "ro"), at=tmp_path / "ro")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    rc, err = run_cli(capsys, "eval", "--gt", gt, "--results", res, "--json", ro / "run.json")
    assert_one_line(rc, err, "--json", "cannot write in", "read-only")

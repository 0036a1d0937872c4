"""Resumable eval: an append-only checkpoint beside the output, and a run that survives SIGKILL.

The checkpoint's rules first (no model needed), then `harness eval` as a user runs it: killed at random
points with SIGKILL and started again until it finishes, it must write exactly what an uninterrupted
run writes. The kill test takes its numbers from the environment so that `nox -s reliability` can run
it at full size: HARNESS_RELIABILITY_KILLS (default 5), HARNESS_RELIABILITY_IMAGES (default 12),
HARNESS_RELIABILITY_SEED (default: a fresh one, printed on failure).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.measure.checkpoint import Checkpoint, checkpoint_path, key_difference

MODEL = "mb3-centernet-f32"
KEY = {"model": "m", "model_sha256": "ab" * 32, "protocol": "native", "image_ids_sha256": "cd" * 32, "shard": None}


def dets(image_id: int, n: int = 2) -> list[dict]:
    return [{"image_id": image_id, "category_id": 1 + k, "bbox": [1.5, 2.25, 3.0, 4.0 + k], "score": 0.5 / (k + 1)}
            for k in range(n)]


# --------------------------------------------------------------------------------------------------
# The checkpoint file


def written(path: Path, *image_ids: int) -> Path:
    """A checkpoint at `path` holding `image_ids` in that order, closed."""
    ck = Checkpoint(path, KEY)
    for i in image_ids:
        ck.append(i, dets(i))
    ck.close()
    return path



def test_nothing_is_written_before_the_first_image(tmp_path: Path) -> None:
    """A run that fails before finishing an image leaves no checkpoint behind."""
    ck = Checkpoint(tmp_path / "c.ckpt.jsonl", KEY)
    ck.close()
    assert ck.done == []
    assert list(tmp_path.iterdir()) == []


def test_appended_images_come_back_in_order(tmp_path: Path) -> None:
    again = Checkpoint(written(tmp_path / "c.ckpt.jsonl", 5, 3, 9), KEY)
    assert again.done == [(5, dets(5)), (3, dets(3)), (9, dets(9))]
    assert again.restore([5, 3, 9, 11]) == again.done


def test_each_image_is_on_disk_as_soon_as_it_is_appended(tmp_path: Path) -> None:
    """Flushed per image: another reader (or the next process after a kill) sees it before close."""
    path = tmp_path / "c.ckpt.jsonl"
    ck = Checkpoint(path, KEY)
    ck.append(1, dets(1))
    lines = path.read_bytes().split(b"\n")
    assert json.loads(lines[1]) == {"image_id": 1, "detections": dets(1)}
    ck.close()


def test_a_torn_last_line_is_dropped_and_overwritten(tmp_path: Path) -> None:
    """A kill in the middle of a write leaves half a line: that image is simply not done."""
    path = written(tmp_path / "c.ckpt.jsonl", 1, 2)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"image_id": 3, "detections": [{"image_id": 3, "categ')

    resumed = Checkpoint(path, KEY)
    assert [i for i, _ in resumed.done] == [1, 2]
    resumed.append(3, dets(3))
    resumed.close()
    assert path.read_bytes() == whole + json.dumps({"image_id": 3, "detections": dets(3)}).encode() + b"\n"
    assert [i for i, _ in Checkpoint(path, KEY).done] == [1, 2, 3]


def test_a_torn_line_of_any_length_is_tolerated(tmp_path: Path) -> None:
    path = written(tmp_path / "c.ckpt.jsonl", 1, 2)
    whole = path.read_bytes()
    second = whole.rindex(b"\n", 0, len(whole) - 1) + 1
    for cut in range(second, len(whole)):  # every prefix of the last line, newline excluded
        path.write_bytes(whole[:cut])
        assert [i for i, _ in Checkpoint(path, KEY).done] == [1]


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    """Detections of another model, protocol or image list are never mixed in; the message says what differs."""
    path = written(tmp_path / "c.ckpt.jsonl", 1)
    other = {**KEY, "model_sha256": "ef" * 32}
    with pytest.raises(HarnessError, match=r"different run \(model_sha256: .* there, .* here\).*--restart"):
        Checkpoint(path, other)
    assert key_difference(KEY, dict(KEY)) is None
    fresh = Checkpoint(path, other, restart=True)
    assert fresh.done == []
    assert not path.exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is not an eval checkpoint"),
    (b"image_id,detections\n1,[]\n", "is not an eval checkpoint"),
    (b'{"format": "something-else", "version": 1, "key": {}}\n', "is not an eval checkpoint"),
], ids=["empty", "csv", "other-format"])
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.ckpt.jsonl"
    path.write_bytes(content)
    with pytest.raises(HarnessError, match=message):
        Checkpoint(path, KEY)


def header_and(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "c.ckpt.jsonl"
    Checkpoint(path, KEY).append(1, dets(1))
    with open(path, "ab") as f:
        for line in lines:
            f.write(line + b"\n")
    return path


def test_damage_before_intact_lines_is_not_a_torn_tail(tmp_path: Path) -> None:
    """Only the end can be torn by a kill; a bad line with good ones after it means the file was damaged."""
    path = header_and(tmp_path, b"garbage", json.dumps({"image_id": 2, "detections": []}).encode())
    with pytest.raises(HarnessError, match="damaged at line 3"):
        Checkpoint(path, KEY)


def test_an_image_listed_twice_is_refused(tmp_path: Path) -> None:
    path = header_and(tmp_path, json.dumps({"image_id": 1, "detections": []}).encode())
    with pytest.raises(HarnessError, match="lists image 1 twice"):
        Checkpoint(path, KEY)


def test_restore_checks_the_run_order(tmp_path: Path) -> None:
    path = written(tmp_path / "c.ckpt.jsonl", 2)
    with pytest.raises(HarnessError, match="does not follow this run's image order"):
        Checkpoint(path, KEY).restore([1, 2, 3])


def test_two_writers_of_one_checkpoint_are_refused(tmp_path: Path) -> None:
    """Two evals into the same --out would interleave their lines: the second one stops instead."""
    path = tmp_path / "c.ckpt.jsonl"
    first = Checkpoint(path, KEY)
    first.append(1, dets(1))
    second = Checkpoint(path, KEY)
    with pytest.raises(HarnessError, match="another harness eval is writing"):
        second.append(2, dets(2))
    first.append(2, dets(2))
    first.close()
    assert [i for i, _ in Checkpoint(path, KEY).done] == [1, 2]


def test_checkpoint_sits_beside_its_detections_file() -> None:
    assert checkpoint_path(Path("out/detections_m_native.json")) == Path("out/detections_m_native.ckpt.jsonl")


# --------------------------------------------------------------------------------------------------
# harness eval, resumed


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)


def eval_args(mirror: Path, out: Path, n: int, *extra: object) -> list[str]:
    return [str(a) for a in ("eval", MODEL, "--mirror", mirror, "--max-images", n, "--out", out, "--quiet",
                             *extra)]


def detections_file(out: Path) -> Path:
    return out / f"detections_{MODEL}_native.json"


def run_in_process(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def reference(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One uninterrupted run over the first 12 images: what every resumed run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    assert main(eval_args(mirror, out, 12, "--json", out / "record.json")) == 0
    return {"detections": detections_file(out).read_bytes(), "record": json.loads((out / "record.json").read_text())}


def test_failed_run_keeps_its_images_and_the_rerun_resumes(capsys, mirror: Path, tmp_path: Path,
                                                             reference: dict) -> None:
    """An unreadable 4th image stops the run after 3; once the file is fixed, the same command does only
    the rest, and the result is the uninterrupted run's, byte for byte."""
    from test_errors import coco_root

    root = coco_root(mirror, tmp_path / "coco", linked=12)
    gt = json.loads((root / "annotations" / "instances_val2017.json").read_text())
    fourth = root / "val2017" / sorted(gt["images"], key=lambda i: i["id"])[3]["file_name"]
    fourth.unlink()
    fourth.write_text("not a JPEG")
    argv = eval_args(mirror, tmp_path / "out", 12, "--coco", root, "--json", tmp_path / "record.json")

    rc, _, err = run_in_process(capsys, argv)
    assert rc == 2
    assert len(err.splitlines()) == 1 and "not a readable image" in err
    assert "3 images done are kept in" in err and "resumes" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"detections_{MODEL}_native.ckpt.jsonl"]

    fourth.unlink()
    fourth.symlink_to(mirror / "coco" / "val2017" / fourth.name)
    rc, out, _ = run_in_process(capsys, argv)
    assert rc == 0
    assert "resuming from" in out and "3 of 12 images already done" in out
    assert detections_file(tmp_path / "out").read_bytes() == reference["detections"]
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["results"]["stats"] == reference["record"]["results"]["stats"]
    assert record["resumed_images"] == 3
    assert record["timing"]["images"] == 9, "timing covers only the images this run did"
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"detections_{MODEL}_native.json"]


def test_killed_after_the_last_image_rescoring_is_all_that_is_left(capsys, mirror: Path, tmp_path: Path,
                                                                  reference: dict,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill between the last image and the end leaves a complete checkpoint: the rerun runs no image,
    only scores, and writes the same detections."""
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(Checkpoint, "remove", Checkpoint.close)  # as if killed before the checkpoint was removed
        assert run_in_process(capsys, eval_args(mirror, out, 12))[0] == 0
    assert checkpoint_path(detections_file(out)).exists()
    detections_file(out).unlink()
    rc, text, _ = run_in_process(capsys, eval_args(mirror, out, 12, "--json", tmp_path / "record.json"))
    assert rc == 0 and "12 of 12 images already done" in text
    assert detections_file(out).read_bytes() == reference["detections"]
    record = json.loads((tmp_path / "record.json").read_text())
    assert (record["resumed_images"], record["timing"]["images"], record["timing"]["model_s"]) == (12, 0, 0.0)
    assert record["results"]["stats"] == reference["record"]["results"]["stats"]


def test_a_different_run_into_the_same_output_is_refused(capsys, mirror: Path, tmp_path: Path) -> None:
    """A checkpoint left by a 6-image run is not silently reused by an 8-image run; --restart discards it."""
    out = tmp_path / "out"
    ckpt = out / f"detections_{MODEL}_native.ckpt.jsonl"
    out.mkdir()
    proc_key = _key_of_a_run(capsys, mirror, tmp_path, 6)
    Checkpoint(ckpt, proc_key).append(139, [])
    rc, _, err = run_in_process(capsys, eval_args(mirror, out, 8))
    assert rc == 2
    assert "was written by a different run (image_ids_sha256" in err and "--restart" in err
    assert list(out.iterdir()) == [ckpt]
    rc, out_text, _ = run_in_process(capsys, eval_args(mirror, out, 8, "--restart"))
    assert rc == 0 and "resuming" not in out_text
    assert not ckpt.exists()


def _key_of_a_run(capsys, mirror: Path, tmp_path: Path, n: int) -> dict:
    """The run key `harness eval` records for the first n images."""
    rc, _, _ = run_in_process(capsys, eval_args(mirror, tmp_path / "keyrun", n, "--json", tmp_path / "k.json"))
    assert rc == 0
    return json.loads((tmp_path / "k.json").read_text())["run_key"]


# --------------------------------------------------------------------------------------------------
# SIGKILL at random points


def checkpoint_ids(path: Path) -> list[int]:
    """Image ids on the complete lines of a checkpoint (a torn last line is not counted)."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[1:-1]
    return [json.loads(line)["image_id"] for line in lines]


def run_until_killed(argv: list[str], ckpt: Path, done_at_least: int, delay_s: float, limit_s: float = 300) -> int:
    """Start `harness eval`, wait until the checkpoint holds `done_at_least` images, wait `delay_s` more,
    SIGKILL it. Returns its exit status (-9 when the kill landed)."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + limit_s
    try:
        while proc.poll() is None and len(checkpoint_ids(ckpt)) < done_at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"no progress to {done_at_least} images in {limit_s} s")
            time.sleep(0.002)
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
    finally:
        _, err = proc.communicate()
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    return proc.returncode


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(mirror: Path, tmp_path: Path) -> None:
    """Kill `harness eval` with SIGKILL at random points (after a random number of finished images plus a
    random few milliseconds: during start-up, inference, a checkpoint write, scoring), start it again
    each time, and let the last run finish: detections and stats are exactly the uninterrupted run's,
    and after every kill the checkpoint holds each finished image once, in order."""
    kills = int(os.environ.get("HARNESS_RELIABILITY_KILLS", "5"))
    n = int(os.environ.get("HARNESS_RELIABILITY_IMAGES", "12"))
    seed = int(os.environ.get("HARNESS_RELIABILITY_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    why = f"(HARNESS_RELIABILITY_SEED={seed})"

    ref_out = tmp_path / "reference"
    ref = subprocess.run([sys.executable, "-m", "harness", *eval_args(mirror, ref_out, n, "--json",
                                                                      tmp_path / "reference.json")],
                         capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-2000:]
    ref_record = json.loads((tmp_path / "reference.json").read_text())
    ref_ids = [r["image_id"] for r in json.loads(detections_file(ref_out).read_text())]
    order = list(dict.fromkeys(ref_ids))
    assert len(order) == n, "every image has detections, so the results list gives the run's image order"

    out = tmp_path / "out"
    argv = eval_args(mirror, out, n, "--json", tmp_path / "record.json")
    ckpt = checkpoint_path(detections_file(out))
    targets = sorted(rng.randrange(n) for _ in range(kills))  # finished images to wait for before each kill
    landed = []
    for target in targets:
        rc = run_until_killed(argv, ckpt, target, rng.uniform(0, 0.06))
        assert rc == -signal.SIGKILL, f"the run finished before the kill after {target} images {why}"
        done = checkpoint_ids(ckpt)
        assert done == order[: len(done)], f"checkpoint is not a prefix of the run's images {why}"
        landed.append(len(done))
    assert not detections_file(out).exists(), "no run got to write its output"
    print(f"{kills} kills {why} after {targets} finished images (+ a few ms); the checkpoint then held {landed}")

    final = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-2000:]
    assert detections_file(out).read_bytes() == detections_file(ref_out).read_bytes(), why
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["results"]["stats"] == ref_record["results"]["stats"], why
    assert record["results"]["per_class"] == ref_record["results"]["per_class"], why
    assert record["resumed_images"] == landed[-1]
    assert record["timing"]["images"] == n - landed[-1]
    assert record["dataset"]["image_ids_sha256"] == ref_record["dataset"]["image_ids_sha256"]
    assert not ckpt.exists(), "a finished run removes its checkpoint"
    assert max(landed) > 0, f"at least one kill landed after some images were done {why}: {landed}"
    shutil.rmtree(out)

"""`harness eval --workers N`: worker processes, images dealt on demand, the one-worker run's output exactly.

The reference for every parallel run is the one-worker run (in this process, the eval as it always was):
the detections file must be the same bytes and the stats the same numbers, whatever order the workers
finish in. mb3-centernet-f32 on the mirror's first 12 images keeps each run to a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.measure import workers as workers_module
from harness.measure.checkpoint import Checkpoint, checkpoint_path
from harness.measure.evaluate import evaluate
from harness.measure.runner import run_eval
from harness.measure.workers import LocalPool, WorkerSpec, parse_workers, plan_workers
from harness.models.mirror import Mirror
from harness.models.pipeline import Pipeline
from harness.models.zoo import get_card
from harness.scoring.coco import CocoGroundTruth

MODEL = "mb3-centernet-f32"
IMAGES = 12


def run(mirror: Path, out: Path, workers: int, **kw) -> tuple[dict, bytes]:
    m = Mirror(mirror)
    gt = CocoGroundTruth(m.val_annotations, kw.pop("images_dir", m.val_images))
    record = evaluate(MODEL, get_card(MODEL), m, gt, max_images=IMAGES, output=out, progress=False,
                      ci_resamples=0, workers=workers, **kw)
    return record, Path(record["detections_file"]).read_bytes()


@pytest.fixture(scope="module")
def one_worker(mirror, tmp_path_factory) -> tuple[dict, bytes]:
    return run(mirror, tmp_path_factory.mktemp("one"), 1)


# --------------------------------------------------------------------------------------------------
# How many workers, how many threads


def test_auto_is_one_worker_per_core_and_the_cores_are_shared_out(monkeypatch):
    monkeypatch.setattr(workers_module, "available_cores", lambda: 8)
    monkeypatch.setitem(workers_module.AUTO_WORKERS, "tflite", lambda: 8)
    assert plan_workers("tflite", None, None, 1000) == (8, 1)  # auto: 8 workers, 8 cores / 8 = 1 thread
    assert plan_workers("tflite", 2, None, 1000) == (2, 4)  # 8 cores / 2 workers
    assert plan_workers("tflite", 3, None, 1000) == (3, 2)  # floor(8 / 3)
    assert plan_workers("tflite", 2, 3, 1000) == (2, 3)  # --threads wins
    assert plan_workers("tflite", None, None, 5) == (5, 1)  # never more workers than images
    assert plan_workers("savedmodel", None, None, 1000) == (1, 8)  # TF spreads one model over every core
    assert plan_workers("tflite", None, None, 1000, "/usr/lib/libvx_delegate.so") == (1, 8)  # one NPU
    assert plan_workers("tflite", 2, 1, 1000, "/usr/lib/libvx_delegate.so") == (2, 1)  # unless told


@pytest.mark.parametrize("text, expected", [("auto", None), (None, None), ("3", 3), (2, 2)])
def test_workers_option_parses(text, expected):
    assert parse_workers(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "many"])
def test_a_bad_workers_count_is_one_line(text, capsys):
    assert main(["eval", MODEL, "--workers", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: --workers wants a count >= 1") and err.count("\n") == 1


# --------------------------------------------------------------------------------------------------
# The one-worker run's output, exactly


@pytest.mark.parametrize("workers", [2, 3])
def test_n_workers_write_the_one_worker_runs_detections_and_stats(mirror, tmp_path, one_worker, workers):
    ref_record, ref_bytes = one_worker
    record, got = run(mirror, tmp_path, workers)
    assert got == ref_bytes  # the detections file, byte for byte
    assert record["results"]["stats"] == ref_record["results"]["stats"]
    assert record["results"]["per_class"] == ref_record["results"]["per_class"]
    assert record["detections_sha256"] == ref_record["detections_sha256"]
    par = record["parallel"]
    assert (par["executor"], par["workers"]) == ("local", workers)
    assert sum(par["images_per_worker"]) == IMAGES
    assert par["peak_rss_mb"]["sum_over_workers"] >= par["peak_rss_mb"]["max_worker"] > 0
    assert ref_record["parallel"]["executor"] == "in-process"


def test_the_record_says_workers_and_threads_and_the_backend_runs_with_them(mirror, tmp_path):
    record, _ = run(mirror, tmp_path, 2, options=None)
    assert record["parallel"]["threads"] == max(1, (len(os.sched_getaffinity(0))) // 2)
    assert record["backend"]["threads"] == record["parallel"]["threads"]


# --------------------------------------------------------------------------------------------------
# Dealt on demand


@dataclasses.dataclass(frozen=True)
class SlowFirstImage(WorkerSpec):
    """A worker spec whose pipeline takes `delay_s` longer to read the run's first image."""

    slow_file: str = ""
    delay_s: float = 0.0

    def open(self) -> Pipeline:
        p = super().open()
        slow, delay, read = self.slow_file, self.delay_s, p.read

        def slow_read(path, expect_size=None):
            if Path(path).name == slow:
                time.sleep(delay)
            return read(path, expect_size)

        p.read = slow_read  # type: ignore[method-assign]
        return p


def test_a_slow_image_holds_up_one_worker_not_a_fixed_share(mirror, one_worker):
    """With the first image taking 4 s, the other worker runs nearly all the rest (a fixed split would give
    each worker 6 of the 12 images); and the output is still the one-worker run's."""
    m = Mirror(mirror)
    gt = CocoGroundTruth(m.val_annotations, m.val_images)
    images = gt.images[:IMAGES]
    pipeline = Pipeline.open(get_card(MODEL), mirror)
    pool = LocalPool(pipeline, 2, 1)
    fields = {f.name: getattr(pool.spec, f.name) for f in dataclasses.fields(WorkerSpec)}
    pool.spec = SlowFirstImage(**fields, slow_file=images[0].file_name, delay_s=4.0)
    _, results, _ = run_eval(pipeline, gt, images, executor=pool)
    shares = pool.describe()["images_per_worker"]
    # The slow worker holds image 0 and at most READ_AHEAD + 1 more it took before the read stalled it.
    assert shares[0] >= IMAGES - 3, shares
    assert json.dumps(results).encode() == json.dumps(json.loads(one_worker[1])).encode()


# --------------------------------------------------------------------------------------------------
# Checkpoint, resume, broken input


def test_workers_resume_from_a_checkpoint_and_write_what_an_uninterrupted_run_writes(mirror, tmp_path, one_worker):
    ref_record, ref_bytes = one_worker
    detections = json.loads(ref_bytes)
    det_file = tmp_path / Path(ref_record["detections_file"]).name
    ck = Checkpoint(checkpoint_path(det_file), ref_record["run_key"])
    m = Mirror(mirror)
    first_five = [i.id for i in CocoGroundTruth(m.val_annotations, m.val_images).images[:5]]
    for image_id in first_five:  # what the interrupted run wrote for them (the one-worker run's entries)
        ck.append(image_id, [d for d in detections if d["image_id"] == image_id])
    ck.close()
    record, got = run(mirror, tmp_path, 2)
    assert record["resumed_images"] == 5
    assert sum(record["parallel"]["images_per_worker"]) == IMAGES - 5
    assert got == ref_bytes
    assert record["results"]["stats"] == ref_record["results"]["stats"]
    assert not checkpoint_path(det_file).exists()


def test_a_broken_image_stops_the_run_but_every_image_before_it_is_kept(mirror, tmp_path, one_worker):
    m = Mirror(mirror)
    gt = CocoGroundTruth(m.val_annotations, m.val_images)
    images_dir = tmp_path / "val2017"
    images_dir.mkdir()
    for info in gt.images[:IMAGES]:  # links to the mirror's files (nothing is copied), one of them broken
        (images_dir / info.file_name).symlink_to(gt.image_path(info))
    broken = gt.images[7].file_name
    (images_dir / broken).unlink()
    (images_dir / broken).write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    with pytest.raises(HarnessError, match=rf"{broken}.*7 images done are kept"):
        run(mirror, out, 2, images_dir=images_dir)
    (ck_file,) = out.glob("*.ckpt.jsonl")
    kept = [json.loads(line)["image_id"] for line in ck_file.read_text().splitlines()[1:]]
    assert kept == [i.id for i in gt.images[:7]]  # the one-worker run's prefix, in order


def test_the_cli_takes_workers_and_writes_the_record(mirror, tmp_path, capsys):
    rec = tmp_path / "r.json"
    assert main(["eval", MODEL, "--mirror", str(mirror), "--max-images", "4", "--workers", "2", "--out",
                 str(tmp_path), "--json", str(rec), "--quiet", "--ci-resamples", "0"]) == 0
    assert json.loads(rec.read_text())["parallel"]["workers"] == 2


def test_an_eval_with_workers_killed_mid_run_resumes_to_the_same_output_and_leaves_no_worker(mirror, tmp_path,
                                                                                            one_worker):
    """SIGKILL the eval (its workers get no signal) once the checkpoint holds images: the workers notice their
    parent is gone and leave, and the same command finishes with the one-worker run's detections."""
    ref_record, ref_bytes = one_worker
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness", "eval", MODEL, "--mirror", str(mirror), "--max-images",
            str(IMAGES), "--workers", "2", "--out", str(out), "--quiet", "--ci-resamples", "0"]
    ck = checkpoint_path(out / Path(ref_record["detections_file"]).name)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ck.exists() and len(ck.read_bytes().splitlines()) >= 3:  # header + 2 images
            break
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the eval finished before it could be killed"
    assert len(workers) >= 2  # the two workers (and the resource tracker multiprocessing may start)
    time.sleep(3)  # a worker checks for its parent every second
    assert not [pid for pid in workers if _alive(pid)]
    assert subprocess.run(argv, capture_output=True).returncode == 0
    assert (out / Path(ref_record["detections_file"]).name).read_bytes() == ref_bytes


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

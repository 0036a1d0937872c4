"""The board's side of `harness eval|bench|detect ... --on TARGET`: run one job spec, hand back a tar.

    python3 harness-board.pyz JOB RUN_ID [--restart] [--tether]

JOB is a job spec (JSON, written by harness.boards.jobs) in the board's content-addressed store; its
`files` name every input (model, images) by sha256, and they are linked into the run folder
runs/RUN_ID/inputs/ under their names (harness.measure.cas has the layout). The job runs with the board's
own numpy, Pillow and TFLite runtime, nothing else; progress goes to stderr as event lines the host shows;
the outputs (out/) go to stdout as one tar stream.

eval runs the detection loop only (scoring needs a COCO engine a board may lack; the host scores the
returned detections with the same evaluator): every image is appended to a checkpoint in the run folder,
so the same job after a dropped connection resumes where it stopped. With --tether the process ends as
soon as its stdin closes, i.e. when the SSH session that started it is gone, so a dead connection never
leaves a process holding the run folder's lock.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import shutil
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError, first_line
from harness.measure.cas import DISK_FULL, cache_dir, cas_dir, emit, runs_dir

FORMAT = "centernet-harness/board-job"
VERSION = 1
CHECKPOINT = "detections.ckpt.jsonl"
LOCK_WAIT_S = 30.0  # how long a new run waits for a predecessor that is still dying


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        emit(error="usage: harness-board.pyz JOB RUN_ID [--restart] [--tether]")
        return 2
    if "--tether" in argv:
        _die_with_session()
    try:
        job = read_job(Path(argv[0]))
        run_dir = Path(runs_dir()) / _safe_name(argv[1])
        with run_lock(run_dir):
            inputs = link_inputs(job, run_dir)
            out = run_dir / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            KINDS[job["kind"]](job, run_dir, inputs, out, "--restart" in argv)
            write_tar(out, sys.stdout.buffer)
    except HarnessError as exc:
        emit(error=str(exc))
        return 2
    except OSError as exc:
        full = exc.errno == errno.ENOSPC
        emit(error=DISK_FULL.format(where=cache_dir()) if full else first_line(exc, with_type=True))
        return 2
    return 0


def read_job(path: Path) -> dict:
    try:
        job = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read the job spec {path}: {first_line(exc)}") from None
    if job.get("format") != FORMAT or job.get("version") != VERSION:
        raise HarnessError(f"{path} is not a {FORMAT} v{VERSION} job (a harness of another version sent it?)")
    if job.get("kind") not in KINDS:
        raise HarnessError(f"unknown job kind {job.get('kind')!r}; this board side runs {', '.join(KINDS)}")
    return job


def _safe_name(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise HarnessError(f"bad run id {name!r}")
    return name


def _die_with_session() -> None:
    """End the process when stdin reaches end of file: the host keeps it open for the whole run."""
    def watch() -> None:  # on the raw descriptor: a buffered reader's lock would block the interpreter's exit
        try:
            while os.read(0, 4096):
                pass
        finally:
            os._exit(3)

    threading.Thread(target=watch, name="harness-tether", daemon=True).start()


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder alone; a predecessor whose session just died gets LOCK_WAIT_S to go."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a") as f:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"another harness run is using {run_dir} on the board; wait for it to end "
                                       "or stop it there") from None
                time.sleep(0.2)
        yield


def link_inputs(job: dict, run_dir: Path) -> Path:
    """runs/RUN/inputs/<name> -> cas/<sha256> for every file the job names; returns the inputs folder."""
    inputs = run_dir / "inputs"
    cas = Path(cas_dir())
    for name, sha in job["files"].items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise HarnessError(f"the job names an input outside its folder: {name!r}")
        target, link = cas / sha, inputs / rel
        if not target.is_file():
            raise HarnessError(f"input {name} ({sha[:12]}) is missing from the board's store {cas}")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return inputs


def write_tar(folder: Path, stream) -> None:
    with tarfile.open(fileobj=stream, mode="w|") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    stream.flush()


def board_card(job: dict, inputs: Path):
    """The job's model card with its source pointing at the model shipped into `inputs` (the host puts the
    card's own source back into the record)."""
    from harness.models.cards import Source
    from harness.records.reader import card_from_record

    card = card_from_record(job["card"])
    return dataclasses.replace(card, source=Source(url=None, mirror_path=None, note=str(inputs / job["model"])))


def backend_options(job: dict):
    from harness.models.backends import BackendOptions

    return BackendOptions(**job["backend"])


class Progress:
    """done/total events on stderr, at most two a second (and always the last)."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.last = total, what, 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done >= self.total or now - self.last >= 0.5:
            emit(what=self.what, done=done, total=self.total)
            self.last = now


def eval_job(job: dict, run_dir: Path, inputs: Path, out: Path, restart: bool) -> None:
    """The eval's detection loop with a checkpoint; out/detections.json and out/board.json (what the host's
    eval record takes from the board: backend, protocol, timing, run key, resumed images, host, versions)."""
    from harness.common.fileio import write_json_atomic
    from harness.measure.checkpoint import Checkpoint, run_key
    from harness.measure.workers import plan_workers
    from harness.models.pipeline import Pipeline
    from harness.records import host
    from harness.records.schema import versions
    from harness.scoring.coco import ImageInfo

    card = board_card(job, inputs)
    emit(what=f"loading {card.name}")
    images = [ImageInfo(*row) for row in job["images"]]
    options = backend_options(job)
    # One worker, with the board's cores as its threads unless told: what `harness eval --workers 1` does there.
    _, threads = plan_workers(card.backend, 1, options.threads, len(images), options.delegate)
    pipeline = Pipeline.open(card, None, dataclasses.replace(options, threads=threads), job["protocol"])
    backend = pipeline.describe()
    ids = [i.id for i in images]
    key = run_key(card, pipeline.protocol, pipeline.model_sha256(), backend.get("runtime"),
                  pipeline.backend.options.delegate, job["annotation_sha256"], ids, job.get("shard"),
                  preprocess=pipeline.preprocess, decoder_settings=pipeline.decoder_params)
    checkpoint = Checkpoint(run_dir / CHECKPOINT, key, restart=restart)
    results, timing, resumed, parallel = detect_all(pipeline, images, lambda i: inputs / "images" / i.file_name,
                                                    checkpoint, Progress(len(images), f"eval {card.name}"))
    write_json_atomic(out / "detections.json", results)
    write_json_atomic(out / "board.json", {
        "backend": backend, "protocol_block": pipeline.protocol_block(backend), "timing": timing.to_dict(),
        "run_key": key, "resumed_images": resumed, "parallel": parallel, "host": host.describe(),
        "versions": versions()})


def detect_all(pipeline, images, path_of: Callable, checkpoint, progress: Callable[[int], None]):
    """Every image through the pipeline in order, the checkpoint's first: (results, Timing, resumed, parallel).

    harness.measure.runner.run_detections, the eval's own loop, so the detections are a local eval's entry
    for entry.
    """
    from harness.measure.runner import InProcess, run_detections

    executor = InProcess(pipeline)
    progress(len(checkpoint.done))  # the restored images, before the first new one
    per_image, timing, resumed = run_detections(executor, images, path_of, checkpoint, progress)
    return [r for _, entries in per_image for r in entries], timing, resumed, executor.describe()


def bench_job(job: dict, run_dir: Path, inputs: Path, out: Path, restart: bool) -> None:
    """harness.measure.benchmark on the board; out/record.json is its bench record."""
    from harness.common.fileio import write_json_atomic
    from harness.measure.bench import BenchSettings
    from harness.measure.benchmark import benchmark
    from harness.measure.profiler import StopRule

    s = job["settings"]
    settings = BenchSettings(model_only=StopRule(**s["model_only"]), end_to_end=StopRule(**s["end_to_end"]),
                             warmup=s["warmup"], max_images=s["max_images"])
    card = board_card(job, inputs)
    emit(what=f"bench {card.name}: timing on the board")
    images_dir = inputs / "images" if job.get("images") else None
    record = benchmark(job["label"], card, None, backend_options(job), images_dir, settings, cpus=job.get("cpus"))
    write_json_atomic(out / "record.json", record)


def detect_job(job: dict, run_dir: Path, inputs: Path, out: Path, restart: bool) -> None:
    """harness.measure.detect on the board; out/detect/ holds the annotated images and the detections JSON."""
    from harness.measure.detect import detect_and_save

    card = board_card(job, inputs)
    paths = [inputs / "images" / name for name in job["images"]]
    emit(what=f"detect {card.name}: {len(paths)} images")
    detect_and_save(card, None, backend_options(job), paths, out / "detect", score_threshold=job["threshold"],
                    protocol=job["protocol"], fmt=job["image_format"])


KINDS: dict[str, Callable[[dict, Path, Path, Path, bool], None]] = {
    "eval": eval_job, "bench": bench_job, "detect": detect_job,
}

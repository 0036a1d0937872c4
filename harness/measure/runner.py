"""The eval loop: images are read and resized ahead of the interpreter, the runner owns the clock.

A reader thread decodes and resizes the next images while the backend runs the current one (Pillow
and most runtimes release the GIL), so `harness eval` costs little more than the model's own time.
With a checkpoint, every finished image is appended to it, and the images an earlier, interrupted
attempt finished are taken from it instead of being run again.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from harness.errors import HarnessError
from harness.measure.checkpoint import Checkpoint
from harness.models.pipeline import Pipeline
from harness.models.preprocess import Prepared
from harness.scoring.coco import CocoGroundTruth, ImageInfo, to_results
from harness.scoring.evaluator import CocoEvaluator, EvalResult

_DONE = object()


@dataclass
class Timing:
    """Where an eval's time went, in seconds. `model_s` is time inside backend.predict."""

    wall_s: float = 0.0
    model_s: float = 0.0
    decode_s: float = 0.0
    wait_s: float = 0.0  # main thread waiting for the reader: image I/O that was not hidden
    checkpoint_s: float = 0.0  # appending finished images to the checkpoint
    images: int = 0  # images run here (not those taken from a checkpoint)
    model_times_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        per = np.asarray(self.model_times_s) * 1e3
        return {
            "wall_s": self.wall_s, "model_s": self.model_s, "decode_s": self.decode_s, "wait_s": self.wait_s,
            "checkpoint_s": self.checkpoint_s, "images": self.images,
            "wall_over_model": self.wall_s / self.model_s if self.model_s else None,
            "model_ms_p50": float(np.median(per)) if per.size else None,
            "model_ms_mean": float(per.mean()) if per.size else None,
        }


def prefetch(items: Iterable[ImageInfo], path_of: Callable[[ImageInfo], Path], pipeline: Pipeline,
             depth: int = 4) -> Iterator[tuple[ImageInfo, Prepared]]:
    """Yield (image, Prepared: the batch and its geometry) while a thread reads and resizes
    (pipeline.read, .prepare) the next `depth` images.

    An error in the reader (a missing or broken image, or one whose size is not the annotation's) is
    raised in the consumer, in order.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def reader() -> None:
        try:
            for info in items:
                if stop.is_set():
                    return
                q.put((info, pipeline.prepare(pipeline.read(path_of(info), (info.width, info.height)))))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)
            return
        q.put(_DONE)

    t = threading.Thread(target=reader, name="harness-image-reader", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a reader waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def as_read(info: ImageInfo, prepared: Prepared) -> ImageInfo:
    """The image as the protocol read it: a protocol that applies EXIF orientation (NXP's cv2.imread) sees a
    rotated image and scales its boxes by the rotated size, as NXP's evaluate.py does; any other, the
    annotation's size (the same pixels)."""
    h, w = prepared.image_shape
    return info if (w, h) == (info.width, info.height) else dataclasses.replace(info, width=w, height=h)


def check_images_exist(gt: CocoGroundTruth, images: Sequence[ImageInfo]) -> None:
    """Fail before any model time is spent if an image file is missing."""
    missing = [gt.image_path(i) for i in images if not gt.image_path(i).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise HarnessError(f"image not found: {missing[0]}{more}; check --coco (needs val2017/ beside annotations/)")


def check_annotations(gt: CocoGroundTruth) -> None:
    """Fail before any model time is spent if annotations name categories or images the file does not list.

    The COCO engines silently skip such boxes, which would score a broken ground truth as if it were fine.
    """
    images = {i.id for i in gt.images}
    for n, a in enumerate(gt.dataset["annotations"]):
        if a["category_id"] not in gt.categories:
            raise HarnessError(f"{gt.path}: annotation {n} (id {a['id']}) has category_id {a['category_id']}, "
                               "which is not in its 'categories'")
        if a["image_id"] not in images:
            raise HarnessError(f"{gt.path}: annotation {n} (id {a['id']}) has image_id {a['image_id']}, "
                               "which is not in its 'images'")


@dataclass
class ImageDone:
    """One image run: its results entries (what CocoEvaluator.process adds) and where its time went.

    `index` is its place in the run's image list, so images finished out of order (several workers)
    are put back in order before they reach the checkpoint and the evaluator.
    """

    index: int
    image_id: int
    results: list[dict]
    model_s: float
    decode_s: float
    wait_s: float
    worker: int = 0  # which worker ran it (its process id; 0: this process)


def run_images(pipeline: Pipeline, items: Iterable[tuple[int, ImageInfo, Path]], depth: int = 4,
               worker: int = 0) -> Iterator[ImageDone]:
    """Run (index, image, path) items through the pipeline in this process, reading ahead `depth` images.

    The one per-image path of every executor (in-process, worker processes, Ray actors), so all of
    them write the same results entries for an image.
    """
    proto = pipeline.card.protocol(pipeline.protocol)
    index_of: dict[int, int] = {}
    paths: dict[int, Path] = {}

    def infos() -> Iterator[ImageInfo]:
        for index, info, path in items:
            index_of[info.id], paths[info.id] = index, path
            yield info

    clock = time.perf_counter
    last = clock()
    for info, prepared in prefetch(infos(), lambda i: paths[i.id], pipeline, depth):
        t0 = clock()
        heads = pipeline.predict(prepared.batch)
        t1 = clock()
        results = to_results(as_read(info, prepared), pipeline.decode(heads, prepared), proto.box_convention,
                             proto.score_threshold)
        t2 = clock()
        yield ImageDone(index_of.pop(info.id), info.id, results, t1 - t0, t2 - t1, t0 - last, worker)
        paths.pop(info.id)
        last = clock()


class Executor(Protocol):
    """Runs pending images somewhere (this process, worker processes, a Ray cluster) and yields each
    finished one, in any order; `describe` is the record's `parallel` block."""

    def run(self, items: Sequence[tuple[int, ImageInfo, Path]]) -> Iterator[ImageDone]: ...

    def describe(self) -> dict: ...


@dataclass
class InProcess:
    """The one-worker executor: the eval's own pipeline, images read ahead by a thread."""

    pipeline: Pipeline

    def run(self, items: Sequence[tuple[int, ImageInfo, Path]]) -> Iterator[ImageDone]:
        return run_images(self.pipeline, items)

    def describe(self) -> dict:
        return {"executor": "in-process", "workers": 1,
                "threads": self.pipeline.backend.options.threads}


class InOrder:
    """Images finished in any order, handed on in the run's order: the detections and the checkpoint
    of any number of workers are the one-worker run's, entry for entry."""

    def __init__(self, first: int, on_next: Callable[[ImageDone], None]) -> None:
        self.next, self.on_next = first, on_next
        self.waiting: dict[int, ImageDone] = {}

    def add(self, done: ImageDone) -> None:
        self.waiting[done.index] = done
        while self.next in self.waiting:
            self.on_next(self.waiting.pop(self.next))
            self.next += 1


def run_eval(pipeline: Pipeline, gt: CocoGroundTruth, images: Sequence[ImageInfo], engine: str = "auto",
             progress: Callable[[int], None] | None = None, checkpoint: Checkpoint | None = None,
             executor: Executor | None = None) -> tuple[EvalResult, list[dict], Timing]:
    """Detect on every image with the pipeline (its protocol), score the detections; returns (result,
    results list, timing).

    `executor` runs the images (default: this process, with `pipeline`); whatever order they finish in,
    they reach the checkpoint and the evaluator in the images' order. With a checkpoint, the images it
    holds are not run again and each image run here is appended to it; `timing` covers only the images
    run here.
    """
    proto = pipeline.card.protocol(pipeline.protocol)
    evaluator = CocoEvaluator(gt, engine, proto.box_convention, proto.score_threshold)
    check_annotations(gt)
    check_images_exist(gt, images)
    per_image, timing, _ = run_detections(executor or InProcess(pipeline), images, gt.image_path, checkpoint,
                                          progress)
    for image_id, results in per_image:  # exactly what process() adds for each image, in the images' order
        evaluator.image_ids.append(image_id)
        evaluator.results.extend(results)
    return evaluator.evaluate(), evaluator.results, timing


def run_detections(executor: Executor, images: Sequence[ImageInfo], path_of: Callable[[ImageInfo], Path],
                   checkpoint: Checkpoint | None = None, progress: Callable[[int], None] | None = None,
                   ) -> tuple[list[tuple[int, list[dict]]], Timing, int]:
    """Every image through `executor` in the images' order, the checkpoint's images first and not run again:
    ([(image id, results entries)], timing of the images run here, how many the checkpoint restored).

    The eval's loop without the evaluator, so an eval on a board (harness.measure.job) writes a local
    eval's detections entry for entry.
    """
    done = checkpoint.restore([i.id for i in images]) if checkpoint else []
    per_image = list(done)
    timing = Timing()
    clock = time.perf_counter

    def take(d: ImageDone) -> None:
        t0 = clock()
        per_image.append((d.image_id, d.results))
        if checkpoint:
            checkpoint.append(d.image_id, d.results)
        timing.checkpoint_s += clock() - t0
        timing.model_times_s.append(d.model_s)
        timing.decode_s += d.decode_s
        timing.wait_s += d.wait_s
        timing.images += 1
        if progress:
            progress(len(done) + timing.images)

    in_order = InOrder(len(done), take)
    pending = [(k, images[k], path_of(images[k])) for k in range(len(done), len(images))]
    start = clock()
    try:
        for finished in executor.run(pending):
            in_order.add(finished)
    except HarnessError as exc:
        if checkpoint and (kept := len(done) + timing.images):
            raise HarnessError(f"{exc} ({kept} images done are kept in {checkpoint.path}; "
                               "the same command resumes after them)") from None
        raise
    finally:
        if checkpoint:
            checkpoint.close()
    timing.wall_s = clock() - start
    timing.model_s = float(sum(timing.model_times_s))
    return per_image, timing, len(done)

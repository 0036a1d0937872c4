"""Parallel eval on one host: worker processes, each with its own interpreter, images dealt on demand.

For int8 and 16x8 TFLite models one single-threaded interpreter per core beats one interpreter with every
core (their kernels scale poorly across threads), so `harness eval --workers N` starts N processes (not
threads: the interpreters and the decode then never share a GIL). The images wait in one queue and a
worker takes the next as soon as it has finished its last one, so a slow image holds up one worker, not a
fixed share of the run. Results come back in any order; the runner puts them back in the images' order
(harness.measure.runner.InOrder), so the detections file, the checkpoint and the stats are a one-worker
run's exactly.

Worker processes are spawned (fresh interpreters: nothing of the parent's loaded runtime is forked) and
load the model before the clock starts; `startup_s` says what that cost. Each one leaves when its parent
dies, so a killed eval leaves no orphans behind.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.common.cores import available_cores
from harness.errors import HarnessError
from harness.measure.runner import ImageDone, run_images
from harness.models.backends import BackendOptions
from harness.models.pipeline import Pipeline
from harness.models.zoo import ModelCard
from harness.scoring.coco import ImageInfo

READ_AHEAD = 1  # images a worker prepares while its interpreter runs: small, so dealing stays on demand
_POLL_S = 0.5


# `--workers auto` per backend: TFLite's kernels scale poorly with threads, so one interpreter per core;
# TensorFlow already spreads one SavedModel over every core, and each process would load TF again.
AUTO_WORKERS = {
    "tflite": available_cores,
    "savedmodel": lambda: 1,
}


def parse_workers(text: str | int | None) -> int | None:
    """'auto' / None -> None (decided per backend), else a positive count, with a one-line error."""
    if text is None or text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise HarnessError(f"--workers wants a count >= 1 or 'auto' (one per core), got {text!r}")
    return n


def plan_workers(backend: str, workers: int | None, threads: int | None, images: int,
                 delegate: str | None = None) -> tuple[int, int]:
    """(workers, interpreter threads each): `workers` or the backend's auto count, never more than there are
    images to run; each interpreter gets cores / workers threads unless `threads` says otherwise. With an
    external delegate (one NPU or GPU) auto is one worker: the accelerator, not the cores, does the work."""
    n = workers or (1 if delegate else AUTO_WORKERS.get(backend, lambda: 1)())
    n = max(1, min(n, images))
    return n, threads or max(1, available_cores() // n)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build the eval's pipeline on its own (picklable: it crosses processes)."""

    card: ModelCard
    model_path: Path
    options: BackendOptions
    protocol: str
    preprocess: object
    decoder_params: dict

    @classmethod
    def of(cls, pipeline: Pipeline, threads: int) -> WorkerSpec:
        return cls(pipeline.card, pipeline.model_path, replace(pipeline.backend.options, threads=threads),
                   pipeline.protocol, pipeline.preprocess, dict(pipeline.decoder_params or {}))

    def open(self) -> Pipeline:
        """The pipeline, loaded here: same model file, protocol, preprocessing and decoder settings."""
        base = Pipeline.open(self.card, None, self.options, self.protocol, model_path=self.model_path)
        return base.variant(self.preprocess, self.decoder_params)  # type: ignore[arg-type]


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _leave_with_parent(parent: int) -> None:
    """A worker whose eval was killed exits too, instead of running images nobody will collect."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _worker_main(spec: WorkerSpec, items: list, tasks, results, limit, parent: int) -> None:
    """A worker process: load the model, then run the image positions it takes from `tasks`, skipping those
    at or past `limit` (the first broken image: what comes after it is not wanted)."""
    _leave_with_parent(parent)
    me = os.getpid()
    try:
        pipeline = spec.open()
    except BaseException as exc:  # reported to the parent, which names it in one line
        results.put(("failed", me, _say(exc)))
        return
    results.put(("ready", me, None))
    start: list[float] = []  # the worker's loop starts with its first image, not while others still load
    order: list[int] = []  # positions taken, in order: the one that failed is the first not done

    def taken() -> Iterator[tuple[int, ImageInfo, Path]]:
        while (index := tasks.get()) is not None:
            if index < limit.value:
                start[:] = start or [time.perf_counter()]
                order.append(index)
                yield (index, *items[index])

    model_s, count = 0.0, 0
    try:
        for done in run_images(pipeline, taken(), depth=READ_AHEAD, worker=me):
            results.put(("done", me, done))
            model_s += done.model_s
            count += 1
    except BaseException as exc:
        results.put(("error", me, (order[count] if count < len(order) else len(items), _say(exc))))
    loop_s = time.perf_counter() - start[0] if start else 0.0
    results.put(("exit", me, {"images": count, "loop_s": loop_s, "model_s": model_s, "peak_rss_mb": peak_rss_mb()}))


def _say(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"


class LocalPool:
    """`workers` processes on this host, started (and loaded) by `run`, gone when it returns."""

    def __init__(self, pipeline: Pipeline, workers: int, threads: int) -> None:
        self.spec = WorkerSpec.of(pipeline, threads)
        self.workers, self.threads = workers, threads
        self.ctx = mp.get_context("spawn")
        self.stats: dict[int, dict] = {}
        self.startup_s = 0.0
        self.procs: list = []

    def run(self, items: Sequence[tuple[int, ImageInfo, Path]]) -> Iterator[ImageDone]:
        """Deal `items` to the workers on demand; yield each finished image as it arrives."""
        if not items:
            return
        table = [(info, path) for _, info, path in items]
        tasks, results, limit = self.ctx.Queue(), self.ctx.Queue(), self.ctx.Value("q", len(items))
        t0 = time.perf_counter()
        self.procs = [self.ctx.Process(target=_worker_main, name=f"harness-eval-worker-{w}", daemon=True,
                                       args=(self.spec, table, tasks, results, limit, os.getpid()))
                      for w in range(self.workers)]
        try:
            for p in self.procs:
                p.start()
            self._wait_ready(results)
            self.startup_s = time.perf_counter() - t0
            for n in range(len(items)):
                tasks.put(n)
            for _ in self.procs:
                tasks.put(None)
            yield from self._collect(results, limit, [k for k, _, _ in items])
        finally:
            limit.value = -1  # also when the consumer stopped early: workers finish their image and leave
            for p in self.procs:
                p.join(10)
                if p.is_alive():
                    p.terminate()
                    p.join()

    def _collect(self, results, limit, keys: list[int]) -> Iterator[ImageDone]:
        """Finished images as they come, until every worker has said goodbye; then the first broken image's
        error. Images before a broken one are still all run (a one-worker run would have kept them too)."""
        errors: list[tuple[int, str]] = []
        live = len(self.procs)
        while live:
            kind, pid, body = self._next(results)
            if kind == "done":
                yield replace(body, index=keys[body.index])
            elif kind == "error":
                errors.append(body)
                limit.value = min(limit.value, body[0])
            elif kind == "exit":
                self.stats[pid] = body
                live -= 1
        if errors:
            raise HarnessError(min(errors)[1])

    def _wait_ready(self, results) -> None:
        ready = 0
        while ready < len(self.procs):
            kind, _, body = self._next(results)
            if kind == "failed":
                for p in self.procs:
                    p.terminate()
                raise HarnessError(f"an eval worker could not load the model: {body}")
            ready += kind == "ready"

    def _next(self, results) -> tuple[str, int, Any]:
        """The next message from a worker; a worker that died without saying goodbye is an error."""
        while True:
            try:
                return results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self.procs if p.exitcode not in (None, 0)]
                if dead:
                    for p in self.procs:
                        p.terminate()
                    raise HarnessError(f"eval worker {dead[0].name} died (exit code {dead[0].exitcode}, "
                                       "out of memory?); try fewer --workers") from None

    def describe(self) -> dict:
        return describe_workers("local", self.workers, self.threads, self.startup_s, self.stats)


def describe_workers(executor: str, workers: int, threads: int, startup_s: float, stats: dict[int, dict],
                     **extra: object) -> dict:
    """The record's `parallel` block: how many workers with how many threads, each one's share and loop
    overhead, and peak memory: summed over the worker processes (what the host had to hold) and the
    largest single worker."""
    rss = [s["peak_rss_mb"] for s in stats.values() if s.get("peak_rss_mb") is not None]
    return {
        "executor": executor, "workers": workers, "threads": threads, "startup_s": startup_s,
        "images_per_worker": sorted((s["images"] for s in stats.values()), reverse=True),
        "loop_over_model_per_worker": [s["loop_s"] / s["model_s"] for s in stats.values() if s["model_s"]],
        "peak_rss_mb": {"sum_over_workers": sum(rss) if rss else None, "max_worker": max(rss) if rss else None,
                        "driver": peak_rss_mb()},
        **extra,
    }


def _in_process(pipeline: Pipeline, workers: int, threads: int, address: str | None):
    from harness.measure.runner import InProcess

    return InProcess(pipeline)


def _local(pipeline: Pipeline, workers: int, threads: int, address: str | None):
    return LocalPool(pipeline, workers, threads)


def _ray(pipeline: Pipeline, workers: int, threads: int, address: str | None):
    from harness.measure.ray_runner import RayPool

    return RayPool(pipeline, workers, threads, address or None)


EXECUTORS = {"in-process": _in_process, "local": _local, "ray": _ray}


def make_executor(pipeline: Pipeline, workers: int, threads: int, ray: str | None = None):
    """Where the images run: a Ray cluster when `ray` is given ("" for a local Ray), worker processes here
    when there are several workers, else this process."""
    kind = "ray" if ray is not None else "local" if workers > 1 else "in-process"
    return EXECUTORS[kind](pipeline, workers, threads, ray)

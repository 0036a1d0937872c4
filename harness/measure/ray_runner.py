"""Eval past one machine on an existing engine: the run's images as Ray tasks on a Ray cluster.

`harness eval --ray [ADDRESS]` splits the images into shards exactly as `--shard i/K` would (K = four
per worker, so that a worker that finishes early takes another), runs each shard as a Ray task on an
actor that has loaded the model once, and gathers every image's detections in the driver, which puts
them back in the run's order and scores once: the detections file and the stats are a local run's.

Without an address a local Ray is started (`ray.init()`, one CPU per worker). On a cluster, every node
needs this package installed and must see the model and image files at the driver's paths (a shared
filesystem, or the same mirror / COCO root at the same place). Ray is an optional extra (`pip install
'centernet-harness[ray]'`), imported only here.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.measure.runner import ImageDone, run_images
from harness.measure.shard import Shard
from harness.measure.workers import READ_AHEAD, WorkerSpec, describe_workers, peak_rss_mb
from harness.models.pipeline import Pipeline
from harness.scoring.coco import ImageInfo

SHARDS_PER_WORKER = 4


def import_ray():
    try:
        import ray
    except ImportError:
        raise HarnessError("--ray needs Ray: pip install 'centernet-harness[ray]' (or run without --ray)") from None
    return ray


class RayWorker:
    """One interpreter on a Ray node: loads the model once, then runs the shards it is handed."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.pipeline = spec.open()
        self.start: float | None = None  # the first shard's start: not the time spent waiting for it
        self.model_s, self.images = 0.0, 0

    def ready(self) -> int:
        return os.getpid()

    def run(self, shard: list[tuple[int, ImageInfo, Path]]) -> list[ImageDone]:
        self.start = self.start or time.perf_counter()
        done = list(run_images(self.pipeline, shard, depth=READ_AHEAD, worker=os.getpid()))
        self.model_s += sum(d.model_s for d in done)
        self.images += len(done)
        return done

    def stats(self) -> dict:
        loop_s = time.perf_counter() - self.start if self.start else 0.0
        return {"images": self.images, "loop_s": loop_s, "model_s": self.model_s, "peak_rss_mb": peak_rss_mb()}


class RayPool:
    """The images of one eval as Ray tasks; Ray is started here when it is not already (and stopped after)."""

    def __init__(self, pipeline: Pipeline, workers: int, threads: int, address: str | None) -> None:
        self.spec = WorkerSpec.of(pipeline, threads)
        self.requested, self.threads, self.address = workers, threads, address
        self.workers = 0
        self.startup_s = 0.0
        self.stats: dict[int, dict] = {}
        self.nodes = 0

    def run(self, items: Sequence[tuple[int, ImageInfo, Path]]) -> Iterator[ImageDone]:
        if not items:
            return
        ray = import_ray()
        from ray.util import ActorPool

        t0 = time.perf_counter()
        started_here = not ray.is_initialized()
        if started_here:
            _check_reachable(self.address)
            local = {"num_cpus": self.requested or None, "include_dashboard": False} if not self.address else {}
            try:
                ray.init(address=self.address, logging_level="ERROR", **local)
            except ConnectionError as exc:
                raise HarnessError(f"cannot reach the Ray cluster at {self.address}: {exc}") from None
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            self.nodes = len([n for n in ray.nodes() if n.get("Alive")])
            self.workers = max(1, min(self.requested or cpus, len(items)))
            actor = ray.remote(num_cpus=1)(RayWorker)
            actors = [actor.remote(self.spec) for _ in range(self.workers)]
            try:
                ray.get([a.ready.remote() for a in actors])
            except ray.exceptions.RayError as exc:
                raise HarnessError(f"a Ray worker could not load the model: {_cause(exc)}") from None
            self.startup_s = time.perf_counter() - t0
            k = min(len(items), self.workers * SHARDS_PER_WORKER)
            shards = [Shard(i, k).select(items) for i in range(1, k + 1)]
            pool = ActorPool(actors)
            try:
                for done in pool.map_unordered(lambda a, shard: a.run.remote(shard), shards):
                    yield from done
            except ray.exceptions.RayError as exc:
                raise HarnessError(_cause(exc)) from None
            for s in ray.get([a.stats.remote() for a in actors]):
                self.stats[len(self.stats)] = s
            for a in actors:
                ray.kill(a)
        finally:
            if started_here:
                ray.shutdown()

    def describe(self) -> dict:
        return describe_workers("ray", self.workers, self.threads, self.startup_s, self.stats,
                                address=self.address or "local", nodes=self.nodes, shards_per_worker=SHARDS_PER_WORKER)


def _check_reachable(address: str | None) -> None:
    """A HOST:PORT address that nothing answers on is refused at once (Ray itself would retry for minutes)."""
    host, sep, port = (address or "").removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # no address (a local Ray) or "auto": Ray finds the cluster itself
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise HarnessError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
                           "start it (ray start --head) or check --ray ADDRESS") from None


def _cause(exc: BaseException) -> str:
    """The worker's own error (a broken image names its file), not Ray's wrapper around it."""
    cause = getattr(exc, "cause", None)
    return str(cause) if isinstance(cause, HarnessError) else f"{type(cause or exc).__name__}: {cause or exc}"

"""The eval application: one model over a COCO split, and the merge of a sharded eval; both return records.

Nothing here prints (a progress bar on a terminal aside): the CLI, the demo and any other caller print
from the returned record. One builder, `eval_record`, makes every eval record, so an eval and a merge
of shards are the same kind of record field for field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from harness.common.bulk import gc_paused
from harness.common.fileio import sha256_file, write_json_atomic
from harness.common.identity import image_ids_sha256
from harness.errors import HarnessError
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror, root_of
from harness.models.zoo import ModelCard
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.errors import error_block
from harness.scoring.evaluator import EvalResult
from harness.scoring.intervals import DEFAULT_LEVEL, DEFAULT_RESAMPLES, check_options, results_interval


def ground_truth(coco: str | Path | None, mirror: Mirror | None) -> CocoGroundTruth:
    """val2017 of a COCO root (--coco), else of the mirror's coco/; neither is an input error."""
    from harness.models.mirror import CocoRoot

    if coco is None:
        if mirror is None:
            raise HarnessError("say where COCO is: --coco DIR, or --mirror DIR / $HARNESS_MIRROR with coco/ in it")
        root = mirror.coco
    else:
        root = CocoRoot(Path(coco))
    root.check()
    return CocoGroundTruth(root.annotations(), root.images())


def eval_record(card: ModelCard, *, label: str | None, protocol: str, backend: dict, dataset: dict,
                result: EvalResult, timing: dict, detections_file: Path, run_key: dict, resumed_images: int,
                protocol_block: dict | None = None, interval: dict | None = None, errors: dict | None = None,
                **extra: object) -> dict:
    """The eval run record (schema centernet-harness/run), with the card's baseline comparison.

    `protocol_block` is what the run did from image file to results entry (Pipeline.protocol_block);
    by default the card's protocol as written. `interval` (harness.scoring.intervals.results_interval)
    goes to `results.interval` and into the comparison's verdict; None leaves both out. `errors`
    (harness.scoring.errors.error_block) goes to `results.errors`.
    """
    from harness.records.schema import new_record
    from harness.scoring.baseline import compare

    block = protocol_block or card.protocol_block(protocol)
    return new_record(
        "eval",
        model=card.to_dict(),
        model_label=label,
        protocol=block,
        backend=backend,
        dataset=dataset,
        results={**result.to_dict(), **({"interval": interval} if interval else {}),
                 **({"errors": errors} if errors else {})},
        comparison=compare(card, protocol, dataset, result.stats["AP"], interval, block.get("overridden", ())),
        timing=timing,
        detections_file=str(detections_file),
        detections_sha256=sha256_file(detections_file),
        run_key=run_key,
        resumed_images=resumed_images,
        **extra,
    )


def evaluate(label: str, card: ModelCard, mirror: Mirror | None, gt: CocoGroundTruth,
             options: BackendOptions | None = None, *, protocol: str | None = None, engine: str = "auto",
             max_images: int | None = None, output: Path, progress: bool = True, shard=None,
             restart: bool = False, ci_resamples: int = DEFAULT_RESAMPLES, ci_level: float = DEFAULT_LEVEL,
             workers: int | None = None, ray: str | None = None, skip_images: int = 0) -> dict:
    """Resolve, load, run and score one model; return the eval record.

    Each finished image goes to a checkpoint beside the detections file, so the same call after a kill
    resumes where it stopped (`restart` discards it); `shard` (harness.measure.shard.Shard) runs only its
    share. `workers` processes run the images (None: the backend's auto count, one per core for TFLite),
    each interpreter with cores / workers threads unless `options.threads` says; `ray` runs them as Ray
    actors instead (a cluster address, or "" for a local Ray). The detections and stats do not depend on
    either. `skip_images` leaves out the first images of the file (the precision search reports on the
    images after the ones it selected on). Every input is checked before the model is loaded. After
    scoring, a bootstrap over the images gives every stat an interval (`ci_resamples` resamples at
    `ci_level`; 0 resamples: none).
    """
    from harness.common.summary import Progress
    from harness.measure.checkpoint import Checkpoint, checkpoint_path, run_key
    from harness.measure.runner import run_eval
    from harness.measure.shard import describe as shard_block
    from harness.measure.workers import make_executor, plan_workers
    from harness.models.pipeline import Pipeline

    if max_images is not None and max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    check_options(ci_resamples, ci_level)
    proto_name = protocol or card.default_protocol
    card.protocol(proto_name)  # unknown protocol: fail before loading anything
    if skip_images < 0 or (skip_images and skip_images >= len(gt.images)):
        raise HarnessError(f"cannot leave out {skip_images} of {len(gt.images)} images")
    images = gt.images[skip_images:]
    images = images[:max_images] if max_images else images
    all_ids = [i.id for i in images]
    if shard is not None:
        images = shard.select(images)
    if not images:
        where = f" for shard {shard} of {len(all_ids)} images" if all_ids else ""
        raise HarnessError(f"{gt.path} lists no images to evaluate{where}")
    ids = [i.id for i in images]
    options = options or BackendOptions()
    # On Ray the cluster's CPUs decide the count (0: one actor per CPU), one thread each unless told.
    n_workers, threads = ((min(workers or 0, len(images)), options.threads or 1) if ray is not None
                          else plan_workers(card.backend, workers, options.threads, len(images), options.delegate))
    options = dataclasses.replace(options, threads=threads)
    pipeline = Pipeline.open(card, root_of(mirror), options, proto_name)
    backend = pipeline.describe()
    detections_file = output / f"detections_{card.name}_{proto_name}{shard.suffix if shard else ''}.json"
    key = run_key(card, proto_name, pipeline.model_sha256(), backend.get("runtime"), options.delegate, gt.sha256,
                  ids, shard, preprocess=pipeline.preprocess, decoder_settings=pipeline.decoder_params)
    checkpoint = Checkpoint(checkpoint_path(detections_file), key, restart=restart)
    resumed = len(checkpoint.done)
    with Progress(len(images), f"eval {card.name}", enabled=progress) as bar:
        executor = make_executor(pipeline, n_workers, threads, ray)
        result, results, timing = run_eval(pipeline, gt, images, engine, bar, checkpoint, executor)
    write_json_atomic(detections_file, results)
    checkpoint.remove()
    return eval_record(card, label=label, protocol=proto_name, backend=backend, dataset=gt.describe(ids),
                       result=result, timing=timing.to_dict(), detections_file=detections_file, run_key=key,
                       resumed_images=resumed, protocol_block=pipeline.protocol_block(backend),
                       interval=results_interval(gt, results, ids, ci_resamples, ci_level),
                       errors=error_block(gt, results, ids), parallel=executor.describe(),
                       **({"shard": shard_block(shard, all_ids, ids)} if shard is not None else {}))


def merge_shards(paths: Sequence[str | Path], *, gt_path: str | Path | None = None, engine: str = "auto",
                 output: Path, ci_resamples: int = DEFAULT_RESAMPLES, ci_level: float = DEFAULT_LEVEL) -> dict:
    """Join the records of `harness eval --shard I/N` runs and score them as the one run they split.

    The merged record is an eval record (same builder, same card and baseline as the shards carry),
    plus `merged_from`; the detections file is the single run's, entry for entry.
    """
    from harness.measure.shard import combine_timings, merge, read_records
    from harness.records.reader import card_from_record
    from harness.scoring.evaluator import score_results

    check_options(ci_resamples, ci_level)
    records = read_records(paths)
    gt = CocoGroundTruth(gt_path or records[0][1]["dataset"]["annotations"])
    merged = merge(records, gt)
    result = score_results(gt, merged.results, merged.image_ids, engine)
    first = merged.records[0]
    card = card_from_record(first["model"])
    proto_name = first["protocol"]["name"]
    detections_file = output / f"detections_{card.name}_{proto_name}.json"
    write_json_atomic(detections_file, merged.results)
    dataset = {**gt.describe(merged.image_ids), "images_dir": first["dataset"].get("images_dir")}
    return eval_record(
        card, label=first.get("model_label"), protocol=proto_name, backend=first["backend"], dataset=dataset,
        protocol_block=dict(first["protocol"]),
        result=result, timing=combine_timings([r["timing"] for r in merged.records]),
        detections_file=detections_file,
        run_key={**first["run_key"], "shard": None, "image_ids_sha256": image_ids_sha256(merged.image_ids)},
        resumed_images=sum(r.get("resumed_images", 0) for r in merged.records),
        interval=results_interval(gt, merged.results, merged.image_ids, ci_resamples, ci_level),
        errors=error_block(gt, merged.results, merged.image_ids),
        parallel={"executor": "merged shards", "per_shard": [r.get("parallel") for r in merged.records]},
        merged_from=[str(path) for path, _ in records])


def score_file(gt_path: str | Path, results_path: str | Path, *, engine: str = "auto",
               max_images: int | None = None, ci_resamples: int = DEFAULT_RESAMPLES,
               ci_level: float = DEFAULT_LEVEL, error_types: bool = True) -> dict:
    """Score an existing COCO results file (like MLPerf's accuracy-coco.py); return the score record.

    A results file made elsewhere gets the intervals an eval gets (`results.interval`; 0 resamples: none) and
    the error decomposition (`results.errors`; `error_types=False`: none, for scoring alone at full scale,
    where it costs about what the scoring does).
    """
    from harness.records.schema import new_record
    from harness.scoring.coco import load_results
    from harness.scoring.evaluator import score_results

    if max_images is not None and max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    check_options(ci_resamples, ci_level)
    with gc_paused():  # millions of small acyclic objects; refcounting frees them
        gt = CocoGroundTruth(gt_path)
        results = load_results(results_path, gt)
        ids = [i.id for i in gt.images][:max_images]
        if max_images is not None:
            kept = set(ids)
            results = [r for r in results if r["image_id"] in kept]
        result = score_results(gt, results, ids, engine)
        interval = results_interval(gt, results, ids, ci_resamples, ci_level) if result.detection_count else None
        errors = error_block(gt, results, ids) if error_types else None
    return new_record("score", dataset=gt.describe(ids), results_file=str(results_path),
                      results={**result.to_dict(), **({"interval": interval} if interval else {}),
                               **({"errors": errors} if error_types else {})})


def detect_test_dev(label: str, card: ModelCard, mirror: Mirror | None, coco: Path,
                    options: BackendOptions | None = None, *, protocol: str | None = None, output: Path,
                    max_images: int | None = None, progress: bool = True, restart: bool = False,
                    workers: int | None = None) -> dict:
    """One model over COCO test-dev2017 (harness.scoring.testdev): the zipped results file the evaluation server
    takes, checked as it checks an upload, and a record that says the AP comes from the server.

    Resumable like an eval (a checkpoint beside the zip); `max_images` runs the first images only, for a
    try-out, and the checks then cover those images.
    """
    from harness.common.summary import Progress
    from harness.measure.checkpoint import Checkpoint, checkpoint_path, run_key
    from harness.measure.runner import check_images_exist, run_detections
    from harness.measure.workers import make_executor, plan_workers
    from harness.models.pipeline import Pipeline
    from harness.records.schema import new_record
    from harness.scoring.testdev import SERVER, SPLIT, check_submission, load_image_info, write_submission

    if max_images is not None and max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    proto_name = protocol or card.default_protocol
    card.protocol(proto_name)  # unknown protocol: fail before loading anything
    info = load_image_info(Path(coco))
    images = info.images[:max_images] if max_images else info.images
    if not images:
        raise HarnessError(f"{info.path} lists no images")
    check_images_exist(info, images)
    ids = [i.id for i in images]
    options = options or BackendOptions()
    n_workers, threads = plan_workers(card.backend, workers, options.threads, len(images), options.delegate)
    options = dataclasses.replace(options, threads=threads)
    pipeline = Pipeline.open(card, root_of(mirror), options, proto_name)
    backend = pipeline.describe()
    key = run_key(card, proto_name, pipeline.model_sha256(), backend.get("runtime"), options.delegate, info.sha256,
                  ids, None, preprocess=pipeline.preprocess, decoder_settings=pipeline.decoder_params)
    stem_file = output / f"detections_{SPLIT}_{card.name}.json"
    checkpoint = Checkpoint(checkpoint_path(stem_file), key, restart=restart)
    with Progress(len(images), f"{SPLIT} {card.name}", enabled=progress) as bar:
        executor = make_executor(pipeline, n_workers, threads, None)
        per_image, timing, resumed = run_detections(executor, images, info.image_path, checkpoint, bar)
    results = [r for _, entries in per_image for r in entries]
    checks = check_submission(results, info, images)
    archive = write_submission(results, output, card.name)
    checkpoint.remove()
    return new_record(
        "submission", model={"name": card.name, "label": label}, protocol={"name": proto_name},
        dataset=info.describe(ids), backend=backend, timing=timing.to_dict(), resumed_images=resumed,
        submission={"file": str(archive), "sha256": sha256_file(archive), "member": archive.stem + ".json",
                    "checks": checks, "ap": None, "ap_from": SERVER,
                    "upload": "zip as written; the server names the split and algorithm from the file name"})

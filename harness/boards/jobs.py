"""The jobs `--on` sends (eval, bench, detect) and the records made from what comes back.

A job spec carries no path of this machine that the board would need: files go by the name they get in the
run's inputs/ folder (model/<file>, images/<file>). The board runs the measuring part; this side keeps what
needs more than numpy, Pillow and a runtime. For eval that is the scoring: the board returns the detections
and its timing, and the host scores them with the same evaluator and bootstrap as a local eval, so the record
is an eval record field for field, with the board as its host (`host`, `versions`: the board's; the
scoring machine in `scored_on`) and a `board` block (target, Python, files and bytes copied).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from harness.boards.remote import BoardJob, BoardRun
from harness.errors import HarnessError
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror, root_of
from harness.models.zoo import ModelCard


def model_file(card: ModelCard, mirror: Mirror | None) -> Path:
    """The card's model here (mirror, cache or download), refused unless it is one .tflite file."""
    from harness.models.fetch import resolve_model

    path = resolve_model(card, root_of(mirror))
    if not path.is_file() or card.backend != "tflite":
        raise HarnessError(f"--on runs TFLite models on boards; {card.name} is a {card.backend} model ({path})")
    return path


def base_job(kind: str, card: ModelCard, label: str, options: BackendOptions, mirror: Mirror | None,
             protocol: str | None) -> BoardJob:
    path = model_file(card, mirror)
    name = f"model/{path.name}"
    spec = {"card": card.to_dict(), "label": label, "protocol": protocol or card.default_protocol,
            "backend": dataclasses.asdict(options), "model": name}
    return BoardJob(kind, spec, {name: path})


def eval_job(card: ModelCard, label: str, options: BackendOptions, mirror: Mirror | None, gt, images: Sequence,
             protocol: str | None, shard: object | None) -> BoardJob:
    """Detections of IMAGES (ImageInfo of GT, already selected) on the board; the annotations stay here."""
    from harness.measure.runner import check_annotations, check_images_exist

    check_annotations(gt)
    check_images_exist(gt, images)
    job = base_job("eval", card, label, options, mirror, protocol)
    job.spec.update(images=[[i.id, i.file_name, i.width, i.height] for i in images],
                    annotation_sha256=gt.sha256, shard=str(shard) if shard is not None else None)
    job.files.update({f"images/{i.file_name}": gt.image_path(i) for i in images})
    return job


def bench_job(card: ModelCard, label: str, options: BackendOptions, mirror: Mirror | None, images_dir: Path | None,
              settings, cpus: str | None) -> BoardJob:
    from harness.models.images import list_images

    images = list_images([images_dir], settings.max_images) if images_dir else []
    job = base_job("bench", card, label, options, mirror, None)
    job.spec.update(settings={"model_only": settings.model_only.to_dict(), "end_to_end": settings.end_to_end.to_dict(),
                              "warmup": settings.warmup, "max_images": settings.max_images},
                    cpus=cpus, images=[p.name for p in images])
    job.files.update({f"images/{p.name}": p for p in images})
    return job


def detect_job(card: ModelCard, options: BackendOptions, mirror: Mirror | None, paths: Sequence[Path],
               threshold: float, protocol: str | None, fmt: str) -> BoardJob:
    names: list[str] = []
    for n, p in enumerate(paths):
        names.append(p.name if p.name not in names else f"{n}-{p.name}")
    job = base_job("detect", card, card.name, options, mirror, protocol)
    job.spec.update(images=names, threshold=threshold, image_format=fmt)
    job.files.update({f"images/{name}": p for name, p in zip(names, paths, strict=True)})
    return job


def on_board(record: dict, run: BoardRun, board: dict | None = None) -> dict:
    """The record as the board's: its host and versions (board.json's, or the record's own), plus `board`."""
    if board is not None:
        record["scored_on"] = {"host": record["host"], "versions": record["versions"]}
        record["host"], record["versions"] = board["host"], board["versions"]
    record["board"] = run.block()
    return record


def eval_record(run: BoardRun, card: ModelCard, label: str, gt, ids: list[int], all_ids: list[int], *,
                engine: str, ci_resamples: int, ci_level: float, detections_file: Path, shard=None) -> dict:
    """Score the board's detections here and make the eval record (harness.measure.evaluate.eval_record), with
    its interval and error types, as a local eval's."""
    import shutil

    from harness.measure.evaluate import eval_record as build
    from harness.measure.shard import describe as shard_block
    from harness.scoring.errors import error_block
    from harness.scoring.evaluator import score_results
    from harness.scoring.intervals import results_interval

    board = json.loads((run.outputs / "board.json").read_text())
    results = json.loads((run.outputs / "detections.json").read_text())
    detections_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(run.outputs / "detections.json", detections_file)
    record = build(card, label=label, protocol=run_protocol(board), backend=board["backend"],
                   dataset=gt.describe(ids), result=score_results(gt, results, ids, engine), timing=board["timing"],
                   detections_file=detections_file, run_key=board["run_key"], resumed_images=board["resumed_images"],
                   protocol_block=board["protocol_block"], interval=results_interval(gt, results, ids, ci_resamples,
                                                                                     ci_level),
                   errors=error_block(gt, results, ids), parallel=board["parallel"],
                   **({"shard": shard_block(shard, all_ids, ids)} if shard else {}))
    return on_board(record, run, board)


def run_protocol(board: dict) -> str:
    return board["run_key"]["protocol"]


def bench_record(run: BoardRun, card: ModelCard) -> dict:
    """The board's bench record, with this harness's command and the card's own source put back."""
    import sys

    record = json.loads((run.outputs / "record.json").read_text())
    record["model"], record["command"] = card.to_dict(), sys.argv[1:]
    return on_board(record, run)


def detect_result(run: BoardRun, paths: Sequence[Path], out: Path) -> tuple[dict, Path]:
    """The board's detect summary with this machine's paths; the annotated images and JSON moved into OUT."""
    import shutil

    from harness.common.fileio import write_json_atomic

    got = run.outputs / "detect"
    saved = next(got.glob("detections_*.json"))
    result = json.loads(saved.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for image, path in zip(result["images"], paths, strict=True):
        image["image"] = str(path)
        if image.get("annotated"):
            name = Path(image["annotated"]).name
            shutil.move(got / name, out / name)
            image["annotated"] = str(out / name)
    result["board"] = run.block()
    return result, write_json_atomic(out / saved.name, result, indent=1)

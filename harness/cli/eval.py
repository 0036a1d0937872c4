"""`harness eval MODEL`: COCO mAP of a model, compared with its published baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import (
    add_board_options,
    add_interval_options,
    add_model_options,
    backend_options,
    find_mirror,
    model_card,
    write_record,
)

NAME = "eval"
HELP = "COCO mAP of a model, compared with its published baseline"


def configure(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    p.add_argument("--coco", help="COCO root with val2017/ and annotations/instances_val2017.json "
                                  "(default: the mirror's coco/); auto: the official val2017, fetched into "
                                  "the cache and verified once, with the model")
    p.add_argument("--protocol", help="decode/scoring protocol from the card (default: the card's)")
    p.add_argument("--engine", default="faster", help="scoring engine: faster (default) or pycocotools")
    p.add_argument("--max-images", type=int, help="evaluate only the first N images by id")
    p.add_argument("--shard", metavar="I/N", help="evaluate only shard I of N (every N-th image from the I-th; "
                                                  "auto or auto/N: from a Kubernetes Indexed Job's or GitLab "
                                                  "parallel's environment); `harness merge` joins the N records")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint of an interrupted run "
                                                          "instead of resuming from it")
    p.add_argument("--output", default="out", help="directory for the detections JSON and the checkpoint of a "
                                                   "run in progress (default: out/)")
    p.add_argument("--workers", default="auto", metavar="N|auto",
                   help="worker processes, each with its own interpreter, images dealt on demand (default auto: "
                        "one per core for TFLite, one with --delegate or for a SavedModel); each gets cores/N threads "
                        "unless --threads")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the images as Ray tasks on the Ray cluster at ADDRESS (none: a local Ray); "
                        "needs the ray extra; --workers then counts Ray workers (default: one per CPU)")
    add_interval_options(p)
    p.add_argument("--json", metavar="FILE", help="write the run record here")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-class table")
    add_board_options(p, quiet=False)


def run(args: argparse.Namespace) -> int:
    from harness.cli.fetch import coco_option
    from harness.cli.format import print_eval_run
    from harness.measure.evaluate import evaluate, ground_truth
    from harness.measure.shard import Shard
    from harness.measure.workers import parse_workers

    shard = Shard.parse(args.shard) if args.shard is not None else None
    workers = parse_workers(args.workers)
    mirror = find_mirror(args)
    card = model_card(args)
    gt = ground_truth(coco_option(args, card, mirror), mirror)
    if args.on:
        return run_on(args, card, mirror, gt, shard)
    if args.store:
        from harness.errors import HarnessError

        raise HarnessError("--store is for --on; add a local record with `harness store import`")
    record = evaluate(args.model, card, mirror, gt, backend_options(args), protocol=args.protocol,
                      engine=args.engine, max_images=args.max_images, output=Path(args.output),
                      progress=not args.quiet, shard=shard, restart=args.restart, ci_resamples=args.ci_resamples,
                      ci_level=args.ci_level, workers=workers, ray=args.ray)
    print_eval_run(record, per_class=not args.quiet)
    write_record(args.json, record)
    return 0


def run_on(args: argparse.Namespace, card, mirror, gt, shard) -> int:
    """--on: the detection loop on each board (resumable there), scored here (harness.boards.jobs)."""
    from harness.boards.jobs import eval_job, eval_record
    from harness.cli.format import print_eval_run
    from harness.cli.on import board_file, run_on_boards
    from harness.errors import HarnessError
    from harness.scoring.evaluator import ENGINES
    from harness.scoring.intervals import check_options

    if args.ray is not None or args.workers != "auto":
        raise HarnessError("--on runs the images in one process on the board; leave out --workers and --ray")
    if args.max_images is not None and args.max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    if args.engine not in ENGINES:
        raise HarnessError(f"unknown scoring engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
    check_options(args.ci_resamples, args.ci_level)
    protocol = args.protocol or card.default_protocol
    card.protocol(protocol)
    images = gt.images[:args.max_images] if args.max_images else gt.images
    all_ids = [i.id for i in images]
    if shard is not None:
        images = shard.select(images)
    if not images:
        raise HarnessError(f"{gt.path} lists no images to evaluate")
    ids = [i.id for i in images]
    job = eval_job(card, args.model, backend_options(args, here=False), mirror, gt, images, protocol, shard)
    name = f"detections_{card.name}_{protocol}{shard.suffix if shard else ''}.json"

    def finish(run, slug: str | None) -> dict:
        record = eval_record(run, card, args.model, gt, ids, all_ids, engine=args.engine,
                             ci_resamples=args.ci_resamples, ci_level=args.ci_level,
                             detections_file=board_file(Path(args.output) / name, slug), shard=shard)
        print_eval_run(record, per_class=not args.quiet)
        return record

    return run_on_boards(args, job, finish, record_file=args.json, restart=args.restart)

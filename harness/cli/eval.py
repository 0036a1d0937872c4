"""`harness eval`: COCO mAP of a model (MODEL), of detections that exist (--results), or of shards (--merge).

    harness eval MODEL [--coco DIR | --mirror DIR] [--shard I/N] ...   run the model, score, compare
    harness eval --results DETECTIONS.json --gt instances_val2017.json  score a results file (as MLPerf's
                                                                         accuracy-coco.py), no model
    harness eval --merge RECORD...                                      join `eval --shard I/N` records
                                                                         and score them as one run
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import (
    add_board_options,
    add_coco,
    add_engine,
    add_gt,
    add_interval_options,
    add_json,
    add_max_images,
    add_model_options,
    add_out,
    add_quiet,
    backend_options,
    find_mirror,
    model_card,
    write_record,
)
from harness.errors import HarnessError

NAME = "eval"
HELP = "COCO mAP of a model (compared with its published baseline), of a results file, or of merged shards"

# The options of a model run and their defaults: given with --results or --merge they are refused.
MODEL_RUN: dict[str, object] = {
    "model": None, "mirror": None, "like": None, "decoder": None, "threads": None, "runtime": None, "delegate": None,
    "delegate_option": [], "coco": None, "protocol": None, "shard": None, "restart": False, "workers": "auto",
    "ray": None, "on": [], "accept_host_key": False, "store": None, "split": "val2017"}


def configure(p: argparse.ArgumentParser) -> None:
    add_model_options(p, optional=True)
    src = p.add_argument_group("no model: score detections that exist")
    src.add_argument("--results", metavar="FILE", help="score this COCO results file against --gt instead of "
                                                       "running a model (default: none)")
    add_gt(src, "what --results is scored against; with --merge: instead of the file the records "
                "name (default: none)")
    src.add_argument("--merge", nargs="+", metavar="RECORD",
                     help="join the N shards' run records (harness eval --shard I/N --json FILE) and score them as "
                          "one run (default: none)")
    add_coco(p, "; auto: the official val2017, fetched into the cache and verified once, with the model")
    p.add_argument("--split", default="val2017", choices=("val2017", "test-dev2017"),
                   help="val2017: scored here; test-dev2017: the images of --coco DIR's "
                        "annotations/image_info_test-dev2017.json, written as the zipped results file the COCO "
                        "evaluation server takes, which gives the AP (default: val2017)")
    p.add_argument("--protocol", help="decode/scoring protocol, one of the card's (see `harness zoo NAME`; "
                                      "default: the card's)")
    add_engine(p)
    add_max_images(p)
    p.add_argument("--shard", metavar="I/N", help="evaluate only shard I of N (every N-th image from the I-th; "
                                                  "auto or auto/N: from a Kubernetes Indexed Job's or GitLab "
                                                  "parallel's environment); `harness eval --merge` joins the N "
                                                  "records (default: all images)")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint of an interrupted run "
                                                          "instead of resuming from it")
    add_out(p, "folder for the detections JSON and the checkpoint of a run in progress", default="out")
    p.add_argument("--workers", default="auto", metavar="N|auto",
                   help="worker processes, each with its own interpreter, images dealt on demand (default auto: "
                        "one per core for TFLite, one with --delegate or for a SavedModel); each gets cores/N threads "
                        "unless --threads")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the images as Ray tasks on the Ray cluster at ADDRESS (none: a local Ray); "
                        "needs the ray extra; --workers then counts Ray workers (default: no Ray)")
    add_interval_options(p)
    p.add_argument("--no-error-types", action="store_true", help="--results: leave out the TIDE error "
                   "decomposition (results.errors), to time the scoring alone (default: decompose)")
    add_json(p)
    add_quiet(p, "no progress bar, no per-class table")
    add_board_options(p)


def run(args: argparse.Namespace) -> int:
    if args.results or args.merge:
        return run_scored(args)
    if args.gt:
        raise HarnessError("--gt is for --results and --merge; a model run reads its ground truth from --coco DIR")
    if not args.model:
        raise HarnessError("say what to evaluate: MODEL (a zoo name or path), --results FILE --gt FILE, or "
                           "--merge RECORD...")
    if args.split == "test-dev2017":
        return run_test_dev(args)
    return run_model(args)


def run_test_dev(args: argparse.Namespace) -> int:
    """--split test-dev2017: detections for the evaluation server; no AP here (no public ground truth)."""
    from harness.measure.evaluate import detect_test_dev
    from harness.measure.workers import parse_workers

    if not args.coco or args.coco == "auto":
        raise HarnessError("--split test-dev2017 needs --coco DIR holding annotations/image_info_test-dev2017.json "
                           "and test2017/ (harness fetch coco-image-info-test2017 coco-test2017 puts them in the "
                           "cache)")
    refused = [flag for flag, given in (("--shard", args.shard), ("--on", args.on), ("--ray", args.ray is not None),
                                        ("--store", args.store)) if given]
    if refused:
        raise HarnessError(f"--split test-dev2017 runs here in one piece: leave out {', '.join(refused)}")
    record = detect_test_dev(args.model, model_card(args), find_mirror(args), Path(args.coco), backend_options(args),
                             protocol=args.protocol, output=Path(args.out), max_images=args.max_images,
                             progress=not args.quiet, restart=args.restart, workers=parse_workers(args.workers))
    sub = record["submission"]
    print(f"{sub['checks']['detections']} detections on {sub['checks']['images']} images of test-dev2017, "
          f"at most {sub['checks']['most_per_image']} an image: the server's checks pass")
    print(f"upload to the COCO evaluation server: {sub['file']} (AP comes from the server)")
    write_record(args.json, record)
    return 0


def run_scored(args: argparse.Namespace) -> int:
    """--results or --merge: no model runs; the options of a model run are refused, not ignored."""
    from harness.cli.format import print_eval, stats_table
    from harness.measure.evaluate import merge_shards, score_file
    from harness.scoring.intervals import describe

    mode = "--results" if args.results else "--merge"
    if args.results and args.merge:
        raise HarnessError("give --results FILE or --merge RECORD..., not both")
    flags = getattr(args, "flags", None) or {}
    given = [flags.get(d, d) for d, default in MODEL_RUN.items() if getattr(args, d) != default]
    if args.merge and args.max_images is not None:
        given.append("--max-images")
    if given:
        raise HarnessError(f"{mode} scores detections that exist: leave out {', '.join(given)} (for a model run)")
    if args.results:
        if not args.gt:
            raise HarnessError("--results needs --gt FILE, the ground truth the detections are scored against")
        record = score_file(args.gt, args.results, engine=args.engine, max_images=args.max_images,
                            ci_resamples=args.ci_resamples, ci_level=args.confidence,
                            error_types=not args.no_error_types)
        results = record["results"]
        if not results["detection_count"]:
            raise HarnessError(f"{args.results} holds no detections for these images: nothing to score (every AP "
                               "would be 0); check that the file is the one your pipeline wrote")
        print(f"{results['detection_count']} detections on {record['dataset']['image_count']} images, "
              f"engine {results['engine']}")
        print(stats_table(results["stats"], results.get("interval")))
        if results.get("interval"):
            print(f"intervals: {describe(results['interval'])}, {results['interval']['seconds']:.1f} s")
    else:
        record = merge_shards(args.merge, gt_path=args.gt, engine=args.engine, output=Path(args.out),
                              ci_resamples=args.ci_resamples, ci_level=args.confidence)
        print_eval(record, per_class=not args.quiet)
        print(f"merged {len(record['merged_from'])} shards: {record['dataset']['image_count']} images, "
              f"{record['results']['detection_count']} detections")
        print(f"detections: {record['detections_file']}")
    write_record(args.json, record)
    return 0


def run_model(args: argparse.Namespace) -> int:
    """MODEL: run it on the images, score, compare with the card's baseline."""
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
        raise HarnessError("--store is for --on; add a local record with `harness store import`")
    record = evaluate(args.model, card, mirror, gt, backend_options(args), protocol=args.protocol,
                      engine=args.engine, max_images=args.max_images, output=Path(args.out),
                      progress=not args.quiet, shard=shard, restart=args.restart, ci_resamples=args.ci_resamples,
                      ci_level=args.confidence, workers=workers, ray=args.ray)
    print_eval_run(record, per_class=not args.quiet)
    write_record(args.json, record)
    return 0


def run_on(args: argparse.Namespace, card, mirror, gt, shard) -> int:
    """--on: the detection loop on each board (resumable there), scored here (harness.boards.jobs)."""
    from harness.boards.jobs import eval_job, eval_record
    from harness.cli.format import print_eval_run
    from harness.cli.on import board_file, run_on_boards
    from harness.scoring.intervals import check_options

    if args.ray is not None or args.workers != "auto":
        raise HarnessError("--on runs the images in one process on the board; leave out --workers and --ray")
    if args.max_images is not None and args.max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    check_options(args.ci_resamples, args.confidence)
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
                             ci_resamples=args.ci_resamples, ci_level=args.confidence,
                             detections_file=board_file(Path(args.out) / name, slug), shard=shard)
        print_eval_run(record, per_class=not args.quiet)
        return record

    return run_on_boards(args, job, finish, record_file=args.json, restart=args.restart)

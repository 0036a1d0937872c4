"""`harness bench MODEL`: latency phases and percentiles of a model on this host (board-ready)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import (
    add_board_options,
    add_confidence,
    add_images,
    add_json,
    add_model_options,
    add_quiet,
    backend_options,
    find_mirror,
    model_card,
    write_record,
)
from harness.errors import HarnessError

NAME = "bench"
HELP = "latency phases and percentiles of a model on this host (board-ready)"


def configure(p: argparse.ArgumentParser) -> None:
    from harness.models.backends.tflite_runtimes import RUNTIMES

    add_model_options(p)
    src = p.add_mutually_exclusive_group()
    add_images(src, "folder of real images to time (default: the mirror's coco/val2017_unlabeled)")
    src.add_argument("--random", action="store_true", help="random input instead of real images")
    p.add_argument("--cpus", help="pin the process to these CPUs, e.g. 0-3 or 2,3 (default: no pinning)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up invokes after the first (default 5)")
    p.add_argument("--min-count", type=int, default=50, help="steady state: at least this many invokes")
    p.add_argument("--min-duration", type=float, default=5.0, help="steady state: at least this many seconds")
    p.add_argument("--max-duration", type=float, default=60.0, help="steady state: stop after this many seconds")
    p.add_argument("--e2e-min-count", type=int, default=20, help="end to end: at least this many images")
    p.add_argument("--e2e-min-duration", type=float, default=3.0, help="end to end: at least this many seconds")
    add_json(p)
    add_quiet(p, "no progress lines (a board's, with --on); the results still print")
    ab = p.add_argument_group("interleaved A/B (an ab_bench record; `harness check --max-slowdown` gates its interval)")
    ab.add_argument("--baseline", metavar="MODEL", help="time MODEL against the candidate in the same run, "
                                                        "alternating in blocks (zoo name or path; default: none)")
    ab.add_argument("--baseline-like", metavar="ZOO_NAME", help="for a baseline path: this zoo card's contract "
                                                                "(default: none)")
    ab.add_argument("--baseline-threads", type=int, metavar="N", help="the baseline's threads (default: the "
                                                                        "candidate's); alone: the candidate model")
    ab.add_argument("--baseline-runtime", metavar="NAME", choices=list(RUNTIMES),
                    help=f"the baseline's TFLite runtime, one of {', '.join(RUNTIMES)} (default: the candidate's); "
                         "alone: the candidate model")
    ab.add_argument("--baseline-delegate", metavar="LIB", help="the baseline's delegate; 'none' for the CPU "
                                                               "(default: the candidate's); alone: the candidate model")
    ab.add_argument("--reference", action="store_true", help="also time the harness's fixed reference model "
                                                             "(a small network that ships with it) and report "
                                                             "candidate / reference, a speed figure across hosts")
    ab.add_argument("--blocks", type=int, default=30, help="A/B: rounds of alternation (default 30)")
    ab.add_argument("--block-size", type=int, default=2, help="A/B: invokes of each side per round (default 2)")
    ab.add_argument("--instances", type=int, default=4, help="A/B: interpreters loaded per side, taking turns "
                                                             "(default 4; one load can run 15%% off another)")
    add_confidence(ab, "of the A/B ratio's interval")
    add_board_options(p)


def run(args: argparse.Namespace) -> int:
    from harness.cli.format import print_bench
    from harness.measure.benchmark import bench_settings, benchmark
    from harness.measure.profiler import StopRule

    mirror = find_mirror(args)
    if args.random:
        images_dir = None
    elif args.images:
        images_dir = Path(args.images)
    else:
        images_dir = mirror.unlabeled_images if mirror else None
    if args.on and (args.reference or args.baseline or baseline_overrides(args)):
        raise HarnessError("--on times one model; run --baseline, --baseline-* and --reference here")
    if args.reference or args.baseline or baseline_overrides(args):
        return run_ab(args, images_dir, mirror)
    settings = bench_settings(args.warmup, StopRule(args.min_count, args.min_duration, args.max_duration),
                              StopRule(args.e2e_min_count, args.e2e_min_duration, args.max_duration))
    if args.on:
        return run_on(args, settings, images_dir, mirror)
    if args.store:
        raise HarnessError("--store is for --on; add a local record with `harness store import`")
    record = benchmark(args.model, model_card(args), mirror, backend_options(args), images_dir, settings,
                       cpus=args.cpus)
    print_bench(record)
    _warn_fallback(record)
    write_record(args.json, record)
    return 0


def run_on(args: argparse.Namespace, settings, images_dir: Path | None, mirror) -> int:
    """--on: the same bench on each board (harness.cli.on), its record with the board as host."""
    from harness.boards.jobs import bench_job, bench_record
    from harness.cli.format import print_bench
    from harness.cli.on import run_on_boards

    card = model_card(args)
    job = bench_job(card, args.model, backend_options(args, here=False), mirror, images_dir, settings, args.cpus)

    def finish(run, slug: str | None) -> dict:
        record = bench_record(run, card)
        print_bench(record)
        _warn_fallback(record)
        return record

    return run_on_boards(args, job, finish, record_file=args.json)


def _warn_fallback(record: dict) -> None:
    """One line on stderr when the delegate left ops on the CPU (the record's backend.delegation lists them)."""
    import sys

    from harness.models.backends.delegation import fallback_warning

    line = fallback_warning(record.get("backend", {}).get("delegation"))
    if line:
        print(line, file=sys.stderr)


def baseline_overrides(args: argparse.Namespace) -> dict:
    """The --baseline-* settings given, as BackendOptions fields."""
    given = {"threads": args.baseline_threads, "runtime": args.baseline_runtime, "delegate": args.baseline_delegate}
    return {k: v for k, v in given.items() if v is not None}


def run_ab(args: argparse.Namespace, images_dir: Path | None, mirror) -> int:
    """`--baseline` / `--baseline-*` / `--reference`: both sides in one process, an ab_bench record."""
    from dataclasses import replace

    from harness.cli.format import print_ab
    from harness.measure.ab import ABSettings, SideSpec, ab_benchmark
    from harness.models.zoo import card_for

    options = backend_options(args)
    candidate = SideSpec(args.model, model_card(args), options)
    overrides = baseline_overrides(args)
    if overrides.get("threads") is not None and overrides["threads"] < 1:
        raise HarnessError(f"--baseline-threads must be at least 1, got {overrides['threads']}")
    if overrides.get("delegate") == "none":
        overrides["delegate"] = None
    elif overrides.get("delegate") and not Path(overrides["delegate"]).is_file():
        raise HarnessError(f"cannot load delegate {overrides['delegate']}: no such file")
    baseline = None
    if args.baseline or overrides:
        name = args.baseline or args.model
        card = card_for(name, args.baseline_like, None) if args.baseline else candidate.card
        baseline = SideSpec(name, card, replace(options, **overrides))
    settings = ABSettings(blocks=args.blocks, block_size=args.block_size, warmup=args.warmup, level=args.confidence,
                          instances=args.instances)
    record = ab_benchmark(candidate, baseline, args.reference, mirror, images_dir, settings, cpus=args.cpus)
    print_ab(record)
    write_record(args.json, record)
    return 0

"""`harness bench MODEL`: latency phases and percentiles of a model on this host (board-ready)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import add_model_options, backend_options, find_mirror, model_card, write_record

NAME = "bench"
HELP = "latency phases and percentiles of a model on this host (board-ready)"


def configure(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--images", help="directory of real images (default: the mirror's coco/val2017_unlabeled)")
    src.add_argument("--random", action="store_true", help="random input instead of real images")
    p.add_argument("--cpus", help="pin the process to these CPUs, e.g. 0-3 or 2,3")
    p.add_argument("--warmup", type=int, default=5, help="warm-up invokes after the first (default 5)")
    p.add_argument("--min-count", type=int, default=50, help="steady state: at least this many invokes")
    p.add_argument("--min-duration", type=float, default=5.0, help="steady state: at least this many seconds")
    p.add_argument("--max-duration", type=float, default=60.0, help="steady state: stop after this many seconds")
    p.add_argument("--e2e-min-count", type=int, default=20, help="end to end: at least this many images")
    p.add_argument("--e2e-min-duration", type=float, default=3.0, help="end to end: at least this many seconds")
    p.add_argument("--json", metavar="FILE", help="write the run record here")


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
    settings = bench_settings(args.warmup, StopRule(args.min_count, args.min_duration, args.max_duration),
                              StopRule(args.e2e_min_count, args.e2e_min_duration, args.max_duration))
    record = benchmark(args.model, model_card(args), mirror, backend_options(args), images_dir, settings,
                       cpus=args.cpus)
    print_bench(record)
    _warn_fallback(record)
    write_record(args.json, record)
    return 0


def _warn_fallback(record: dict) -> None:
    """One line on stderr when the delegate left ops on the CPU (the record's backend.delegation lists them)."""
    import sys

    from harness.models.backends.delegation import fallback_warning

    line = fallback_warning(record.get("backend", {}).get("delegation"))
    if line:
        print(line, file=sys.stderr)

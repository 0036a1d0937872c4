"""`harness demo`: evaluate and bench the mirror's four mb3-centernet artifacts, compare them, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import add_max_images, add_mirror, add_out, add_quiet
from harness.errors import HarnessError

NAME = "demo"
HELP = "evaluate the mirror's four mb3-centernet artifacts and compare them"


def configure(p: argparse.ArgumentParser) -> None:
    from harness.analyse.demo import DEMO_MODELS

    add_mirror(p)
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), metavar="MODEL",
                   help=f"zoo names to evaluate (default: {' '.join(DEMO_MODELS)})")
    add_max_images(p)
    add_out(p, "folder for the detections, the records, the record store (runs.sqlite) and the report "
               "(OUT/report)", default="reports/demo")
    p.add_argument("--no-bench", action="store_true", help="evaluate only, skip the latency runs")
    p.add_argument("--workers", default="auto", metavar="N|auto",
                   help="eval worker processes (default auto: one per core for TFLite models)")
    p.add_argument("--compare-images", type=int, default=8, metavar="N",
                   help="images for the float-vs-quantized layer comparison (default 8)")
    add_quiet(p, "no per-run output and no Markdown summary: only where the records and the report went")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.demo import run_demo
    from harness.cli.format import print_record
    from harness.measure.workers import parse_workers
    from harness.models.mirror import Mirror

    mirror = Mirror.require(args.mirror, "the demo needs the mirror: --mirror DIR or $HARNESS_MIRROR")
    out = Path(args.out)
    result = run_demo(mirror, args.models, max_images=args.max_images, output=out, report_dir=out / "report",
                      bench=not args.no_bench, compare_images=args.compare_images,
                      on_record=(lambda record: None) if args.quiet else print_record,
                      workers=parse_workers(args.workers))
    for note in result.notes:
        print(f"note: {note}")
    report = result.report
    if report is None:  # run_demo ends with the report; none means it stopped short
        raise HarnessError("the demo made no report")
    if not args.quiet:
        print()
        print(report.markdown_text)
    print(f"records: {out}/eval_*.json, {out}/bench_*.json and the store {out}/runs.sqlite")
    print(f"report: {report.html}")
    return 0

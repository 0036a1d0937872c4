"""`harness report`: tables, plots and an HTML/Markdown/CSV report over run records; with --history, the site of
every series over commits with its change points (harness.analyse.report.history_site)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.cli.options import add_out, add_quiet, add_record_sources, add_resamples
from harness.errors import HarnessError

NAME = "report"
HELP = "tables, plots and an HTML/Markdown/CSV report over run records"


def configure(p: argparse.ArgumentParser) -> None:
    add_record_sources(p)
    add_out(p, "folder for the report (index.html, report.md, CSV tables, plots)", default="reports/latest")
    p.add_argument("--gallery", type=int, default=4, metavar="N", help="images per gallery (0: none; default 4)")
    p.add_argument("--gallery-threshold", type=float, default=0.3, metavar="SCORE",
                   help="draw boxes scoring at least this in the gallery (default 0.3; never affects AP)")
    p.add_argument("--title", default="CenterNet harness report", help="page title (default: %(default)s)")
    add_resamples(p, "for the paired ΔAP of float and quantized siblings, from their detection files (0: none)")
    p.add_argument("--min-instances", type=int, default=10, metavar="N",
                   help="per-class rows from fewer ground-truth boxes are greyed out, not ranked (default 10)")
    p.add_argument("--history", action="store_true",
                   help="instead of the report of the newest runs: a static site (index.html, data.js, history.json, "
                        "no server) of each latency and AP series over commits with its change points and a table "
                        "of regressions; rebuilt in place, recomputing only the series with new runs")
    p.add_argument("--max-slowdown", type=float, default=1.05, metavar="RATIO",
                   help="--history: a change point is a regression in force while the newest runs are more than "
                        "RATIO slower (or lower in AP) than before it, as `check --change-points` gates (default 1.05)")
    add_quiet(p, "do not print the Markdown summary (--history: the series count)")


def records_root(sources: list[str]) -> Path | None:
    """The folder the record files were read from (for several, the one holding them all): the gallery and
    the paired intervals look there for the detections and images a moved record names."""
    dirs = [(p.parent if p.is_file() else p).resolve() for p in map(Path, sources)]
    return Path(os.path.commonpath(dirs)) if dirs else None


def run(args: argparse.Namespace) -> int:
    if args.history:
        return _history(args)
    from harness.analyse.report.build import build_report
    from harness.records.reader import load_records

    if args.gallery < 0:
        raise HarnessError("--gallery must be >= 0")
    if not 0.0 <= args.gallery_threshold <= 1.0:
        raise HarnessError(f"--gallery-threshold is a score between 0 and 1, got {args.gallery_threshold:g}")
    if args.ci_resamples < 0 or args.min_instances < 0:
        raise HarnessError("--ci-resamples and --min-instances must be >= 0")
    records = load_records(args.records, args.store)
    base = records_root(args.records)
    report = build_report(records, args.out, gallery_images=args.gallery, base_dir=base, title=args.title,
                          gallery_threshold=args.gallery_threshold, ci_resamples=args.ci_resamples,
                          min_instances=args.min_instances)
    if not args.quiet:
        print(report.markdown_text)
    print(f"report: {report.html}")
    return 0


def _history(args: argparse.Namespace) -> int:
    """The history site: no pandas or matplotlib, the page draws its own charts."""
    from harness.analyse.report.history_site import write_site
    from harness.records.reader import load_records

    if args.max_slowdown < 1:
        raise HarnessError(f"--max-slowdown is a ratio >= 1 (e.g. 1.05 for 5%), got {args.max_slowdown:g}")
    records = load_records(args.records, args.store)
    acks: list[dict[str, str]] = []
    if args.store:
        from harness.records.store import RecordStore

        with RecordStore(args.store, create=False) as store:
            acks = store.acks()
    title = "CenterNet harness history" if args.title == "CenterNet harness report" else args.title
    done = write_site(records, args.out, args.max_slowdown, acks=acks, title=title)
    if not args.quiet:
        print(f"{done['series']} series ({done['computed']} recomputed), {done['regressions']} regression(s) in force")
    print(f"history: {done['index']}")
    return 0

"""`harness dashboard`: a static site of each latency and AP series over commits, with its change points."""

from __future__ import annotations

import argparse

from harness.cli.options import add_out, add_quiet, add_record_sources
from harness.errors import HarnessError

NAME = "dashboard"
HELP = "a static site (one folder, no server) of latency and AP over commits, with change points and regressions"


def configure(p: argparse.ArgumentParser) -> None:
    add_record_sources(p)
    add_out(p, "folder for the site (index.html, data.js, history.json, bencher-metrics.json, series/); rebuilt in "
               "place, recomputing only the series whose runs changed", default="reports/dashboard")
    p.add_argument("--max-slowdown", type=float, default=1.05, metavar="RATIO",
                   help="a change point is a regression in force while the newest runs are more than RATIO slower "
                        "(or lower in AP) than before it, as `harness check --change-points` gates (default 1.05)")
    p.add_argument("--title", default="CenterNet harness history", help="page title (default: %(default)s)")
    add_quiet(p, "print only the path of the page")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.report.history_site import write_site
    from harness.records.reader import load_records

    if args.max_slowdown < 1:
        raise HarnessError(f"--max-slowdown is a ratio >= 1 (e.g. 1.05 for 5%), got {args.max_slowdown:g}")
    records = load_records(args.records, args.store)
    acks = []
    if args.store:
        from harness.records.store import RecordStore

        with RecordStore(args.store, create=False) as store:
            acks = store.acks()
    done = write_site(records, args.out, args.max_slowdown, acks=acks, title=args.title)
    if not args.quiet:
        print(f"{done['series']} series ({done['computed']} recomputed), {done['regressions']} regression(s) in force")
    print(f"dashboard: {done['index']}")
    return 0

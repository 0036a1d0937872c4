"""`harness compare latency A.json B.json`: two bench records of one host, stat by stat."""

from __future__ import annotations

import argparse

from harness.cli.options import add_quiet

NAME = "latency"
HELP = "two bench records (harness bench --json) of the same host: latency B over A"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="a bench record .json (the reference)")
    p.add_argument("b", metavar="B", help="a bench record .json")
    add_quiet(p, "the table only, without the line about the hosts")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.comparisons import compare_latency
    from harness.common.summary import table

    cmp = compare_latency(args.a, args.b)
    if not args.quiet:
        print(f"same host fingerprint {cmp.fingerprint}: like for like")
    rows = [(phase, k, f"{v['a'] * 1e3:.2f}", f"{v['b'] * 1e3:.2f}", f"{v['b_over_a']:.3f}")
            for phase, stats in cmp.phases.items() for k, v in stats.items()]
    print(table(["phase", "stat", "A ms", "B ms", "B/A"], rows))
    return 0

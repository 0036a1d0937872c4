"""`harness check`: CI gates over run records (exit 0 pass, 1 a gate failed, 2 bad input)."""

from __future__ import annotations

import argparse

from harness.cli.options import EXIT_GATE_FAILED, add_confidence, add_quiet, add_record_sources, add_resamples
from harness.errors import HarnessError

NAME = "check"
HELP = "CI gates over run records: exit 0 pass, 1 a gate failed, 2 bad input"


def configure(p: argparse.ArgumentParser) -> None:
    add_record_sources(p)
    p.add_argument("--ap-tolerance", type=float, metavar="POINTS",
                   help="accuracy gate: |AP - reference| <= POINTS; the reference is --expect or the published "
                        "baseline of a like-for-like run (default: no accuracy gate)")
    p.add_argument("--expect", action="append", default=[], metavar="MODEL=AP",
                   help="the AP (points) MODEL must reach on the records' image set (repeatable; default: none, the "
                        "published baseline)")
    p.add_argument("--allow-unlike", action="store_true",
                   help="also gate runs that are not like for like against the published baseline")
    p.add_argument("--max-quant-drop", type=float, metavar="POINTS",
                   help="quantization gate: float AP - quantized AP <= POINTS, siblings of one family (default: no "
                        "quantization gate)")
    p.add_argument("--min-relative-accuracy", type=float, metavar="RATIO",
                   help="relative accuracy gate: quantized AP >= RATIO x its float sibling's AP (0.99: MLPerf's "
                        "99%% of FP32), for quantized evals and the plan a quantize search chose (default: no such "
                        "gate)")
    add_confidence(p, default=None, what="of a paired bootstrap interval of the quantization gate's drop (e.g. "
                                         "0.95): fail when the drop exceeds POINTS with this confidence, pass when "
                                         "it is below, else inconclusive (needs the records' detection files; "
                                         "default: none, the gate compares point values)")
    p.add_argument("--inconclusive", choices=("pass", "fail"), default="pass",
                   help="how an inconclusive --confidence verdict exits: pass with a warning (default: noise "
                        "never breaks a build) or fail")
    add_resamples(p, "for --confidence")
    p.add_argument("--max-slowdown", type=float, metavar="RATIO",
                   help="latency gates: an A/B record fails when its p50 ratio's interval lies wholly above RATIO; "
                        "a series of bench records on one host fails when the newest p50 / median of the earlier "
                        "p50s exceeds RATIO and the host's noise band, significantly (default: no latency gate)")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the latency gate (0.01)")
    p.add_argument("--history", type=int, default=10, metavar="K",
                   help="latency series gate: compare the newest run with the median p50 of the K runs before it "
                        "(default 10); A/B records (harness bench --baseline) are gated on their interval instead")
    p.add_argument("--change-points", action="store_true",
                   help="with --max-slowdown: instead of the newest run against the last K, find the change points "
                        "of each whole latency and AP series and fail while one that made it more than RATIO slower "
                        "(or lower in AP) is in force and not acknowledged (`harness store ack`)")
    p.add_argument("--skip-missing", action="store_true",
                   help="a gate with nothing to check passes with a note instead of exit 2 (a host's first run)")
    add_quiet(p, "print only the failed and inconclusive gates and the count, not each passed one")


def expectations(items: list[str]) -> dict[str, float]:
    """--expect MODEL=AP (repeatable) as {model: AP in points}."""
    expected = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            expected[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise HarnessError(f"--expect wants MODEL=AP (AP in points, e.g. mb3-centernet-f32=28.5), got {item!r}")
    return expected


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.analyse.check import run_gates
    from harness.records.reader import load_records

    expected = expectations(args.expect)
    acks: list[dict[str, str]] = []
    if args.change_points and args.store:
        from harness.records.store import RecordStore

        with RecordStore(args.store, create=False) as store:
            acks = store.acks()
    base = next((Path(r).parent if Path(r).is_file() else Path(r) for r in args.records), None)
    findings = run_gates(load_records(args.records, args.store), tolerance=args.ap_tolerance, expected=expected,
                         allow_unlike=args.allow_unlike, max_quant_drop=args.max_quant_drop,
                         max_slowdown=args.max_slowdown, alpha=args.alpha, skip_missing=args.skip_missing,
                         confidence=args.confidence, inconclusive=args.inconclusive, base_dir=base,
                         resamples=args.ci_resamples, min_relative_accuracy=args.min_relative_accuracy,
                         history=args.history, change_points=args.change_points, acks=acks,
                         store=args.store or "STORE")
    for f in findings:
        if args.quiet and f.passed and not f.warning:
            continue
        print(f"{'FAIL' if not f.passed else 'WARN' if f.warning else 'PASS'} [{f.gate}] {f.message}")
    failed = [f for f in findings if not f.passed]
    warned = sum(f.passed and f.warning for f in findings)
    print(f"{len(findings) - len(failed)} passed{f' ({warned} inconclusive)' if warned else ''}, "
          f"{len(failed)} failed")
    return EXIT_GATE_FAILED if failed else 0

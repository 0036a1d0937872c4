"""`harness doctor`: why does my mAP not match? A results file, or a model run under variants of its protocol.

    harness doctor --gt instances_val2017.json --results detections.json [--expect 50.5] [--json FILE]
    harness doctor MODEL [--like CARD] [--protocol P] (--coco DIR | --mirror DIR) [--max-images 48] [--json FILE]

Exit 0 when nothing worth half an AP point (or no flag) is found, 1 when something is (a file with nothing
to score is a flag), 2 for bad input. With two or more corrections, the AP with all of them applied together
is printed after the table. The expected AP is `--expect` for a results file and the card's published
baseline for a model: an AP still far below it after every correction is a finding, not "no problem found".
"""

from __future__ import annotations

import argparse
import sys

from harness.cli.options import (
    EXIT_GATE_FAILED,
    add_coco,
    add_engine,
    add_gt,
    add_json,
    add_max_images,
    add_model_options,
    add_quiet,
    backend_options,
    find_mirror,
    model_card,
    write_record,
)
from harness.errors import HarnessError

NAME = "doctor"
HELP = "why a mAP does not match: checks a results file, or runs a model under variants of its protocol"


def configure(p: argparse.ArgumentParser) -> None:
    add_model_options(p, optional=True)  # MODEL: leave out with --results
    p.add_argument("--results", metavar="FILE", help="a COCO results file to examine instead of running a model "
                                                     "(default: none)")
    add_gt(p, "what --results is scored against (default: none)")
    add_coco(p)
    p.add_argument("--protocol", help="the protocol to start from, one of the card's (default: the card's)")
    add_max_images(p, default=48)
    add_engine(p)
    p.add_argument("--expect", type=float, metavar="AP", help="with --results: the AP (in points, e.g. 50.5) the "
                   "file should score; far below it after every correction is a finding (default: none)")
    add_json(p, "doctor")
    add_quiet(p, "no progress lines (one per variant run)")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.doctor.findings import ALARM, Finding, format_findings, format_together
    from harness.records.schema import new_record

    body = _results(args) if args.results or args.gt else _model(args)
    findings = [Finding(**f) for f in body["findings"]]
    print(format_findings(findings))
    if body.get("together"):
        print("\n" + format_together(body["together"]))
    if body.get("error_profile"):
        print("\n" + body["error_profile"]["line"])
    reasons = (body.get("comparison") or {}).get("reasons") or []
    if reasons:
        print("\nunlike the published baseline: " + "; ".join(reasons))
    write_record(args.json, new_record("doctor", **body))
    alarms = [f for f in findings if f.ap_after is None or abs(f.change) >= ALARM]
    return EXIT_GATE_FAILED if alarms else 0


def _results(args: argparse.Namespace) -> dict:
    from harness.analyse.doctor.results import doctor_file
    from harness.scoring.coco import CocoGroundTruth

    if not (args.results and args.gt):
        raise HarnessError("a results file needs both --gt ANNOTATIONS and --results RESULTS.json")
    if args.model:
        raise HarnessError("give a MODEL to run, or --gt and --results to examine, not both")
    if args.expect is not None and not 0 < args.expect <= 100:
        raise HarnessError(f"--expect is an AP in points, above 0 and at most 100 (e.g. 50.5), not {args.expect:g}")
    expected = None if args.expect is None else args.expect / 100
    _, body = doctor_file(CocoGroundTruth(args.gt), args.results, engine=args.engine, expected=expected)
    return body


def _model(args: argparse.Namespace) -> dict:
    from harness.analyse.doctor.model import doctor_model

    if not args.model:
        raise HarnessError("say what to examine: MODEL (a zoo name or path), or --gt and --results")
    if args.expect is not None:
        raise HarnessError("--expect is for a results file; a model is held to its card's published baseline")
    if args.max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    return doctor_model(model_card(args), find_mirror(args), args.coco, backend_options(args), args.protocol,
                        max_images=args.max_images, engine=args.engine,
                        progress=None if args.quiet else lambda line: print(line, file=sys.stderr))

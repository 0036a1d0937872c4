"""`harness doctor`: why does my mAP not match? A results file, or a model run under variants of its protocol.

    harness doctor --gt instances_val2017.json --results detections.json [--expect 50.5] [--json OUT]
    harness doctor MODEL [--like CARD] [--protocol P] (--coco DIR | --mirror DIR) [--max-images 48] [--json OUT]

Exit 0 when nothing worth half an AP point (or no flag) is found, 1 when something is (a file with nothing
to score is a flag), 2 for bad input. With two or more corrections, the AP with all of them applied together
is printed after the table. The expected AP is `--expect` for a results file and the card's published
baseline for a model: an AP still far below it after every correction is a finding, not "no problem found".
"""

from __future__ import annotations

import argparse
import sys

from harness.cli.options import EXIT_GATE_FAILED, backend_options, find_mirror, model_card, write_record
from harness.errors import HarnessError

NAME = "doctor"
HELP = "why a mAP does not match: checks a results file, or runs a model under variants of its protocol"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="a zoo name or model path to run (leave out with --results)")
    p.add_argument("--gt", help="ground truth instances_*.json (with --results)")
    p.add_argument("--results", help="a COCO results file to examine instead of running a model")
    p.add_argument("--mirror", help="a local mirror laid out like ../shared/mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--coco", help="COCO root with val2017/ and annotations/ (default: the mirror's coco/)")
    p.add_argument("--like", metavar="ZOO_NAME", help="for a model path: use this zoo card's contract")
    p.add_argument("--decoder", help="for a model path: head layout (tfod_centernet, ltrb_centernet, postprocessed)")
    p.add_argument("--protocol", help="the protocol to start from (default: the card's)")
    p.add_argument("--max-images", type=int, default=48, help="images to run each variant on (default 48)")
    p.add_argument("--engine", default="faster", help="scoring engine: faster (default) or pycocotools")
    p.add_argument("--threads", type=int, help="interpreter threads (default: the runtime's)")
    p.add_argument("--runtime", help="TFLite runtime (default: first found)")
    p.add_argument("--delegate", metavar="LIB", help="external delegate library")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--expect", type=float, metavar="AP", help="with --results: the AP (in points, e.g. 50.5) the "
                   "file should score; far below it after every correction is a finding (default: none)")
    p.add_argument("--json", metavar="FILE", help="write the doctor record here (default: none)")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.doctor.findings import ALARM, Finding, format_findings, format_together
    from harness.records.schema import new_record

    body = _results(args) if args.results or args.gt else _model(args)
    findings = [Finding(**f) for f in body["findings"]]
    print(format_findings(findings))
    if body.get("together"):
        print("\n" + format_together(body["together"]))
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
                        progress=lambda line: print(line, file=sys.stderr))

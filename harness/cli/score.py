"""`harness score`: score an existing COCO results file (like MLPerf's accuracy-coco.py)."""

from __future__ import annotations

import argparse

from harness.errors import HarnessError

NAME = "score"
HELP = "score an existing COCO results file (like MLPerf's accuracy-coco.py)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", required=True, help="ground truth instances_*.json")
    p.add_argument("--results", required=True, help="detections in the official results format")
    p.add_argument("--engine", default="faster", help="faster (default) or pycocotools")
    p.add_argument("--max-images", type=int, help="score only the first N images by id")
    p.add_argument("--json", metavar="FILE", help="write the run record here")


def run(args: argparse.Namespace) -> int:
    from harness.cli.format import stats_table
    from harness.measure.evaluate import score_file

    record = score_file(args.gt, args.results, engine=args.engine, max_images=args.max_images)
    results = record["results"]
    if not results["detection_count"]:
        raise HarnessError(f"{args.results} holds no detections for these images: nothing to score (every AP "
                           "would be 0); check that the file is the one your pipeline wrote")
    print(f"{results['detection_count']} detections on {record['dataset']['image_count']} images, "
          f"engine {results['engine']}")
    print(stats_table(results["stats"]))
    if args.json:  # the record only: score prints no "run record:" line (scripts parse its output)
        from harness.common.fileio import write_json_atomic

        write_json_atomic(args.json, record, indent=1)
    return 0

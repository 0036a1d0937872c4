"""`harness merge`: join the records of `harness eval --shard I/N` runs and score them as one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import add_interval_options, write_record

NAME = "merge"
HELP = "join the records of `harness eval --shard I/N` runs and score them as one run"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("records", nargs="+", help="the N shards' run records (harness eval --shard I/N --json FILE)")
    p.add_argument("--gt", help="ground truth instances_*.json (default: the file named in the records)")
    p.add_argument("--engine", default="faster", help="scoring engine: faster (default) or pycocotools")
    p.add_argument("--output", default="out", help="directory for the merged detections JSON (default: out/)")
    add_interval_options(p)
    p.add_argument("--json", metavar="FILE", help="write the merged run record here")
    p.add_argument("--quiet", action="store_true", help="no per-class table")


def run(args: argparse.Namespace) -> int:
    from harness.cli.format import print_eval
    from harness.measure.evaluate import merge_shards

    record = merge_shards(args.records, gt_path=args.gt, engine=args.engine, output=Path(args.output),
                          ci_resamples=args.ci_resamples, ci_level=args.ci_level)
    print_eval(record, per_class=not args.quiet)
    print(f"merged {len(record['merged_from'])} shards: {record['dataset']['image_count']} images, "
          f"{record['results']['detection_count']} detections")
    print(f"detections: {record['detections_file']}")
    write_record(args.json, record)
    return 0

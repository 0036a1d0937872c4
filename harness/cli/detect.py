"""`harness detect MODEL IMAGE...`: annotated copies and a table of detections (board-ready)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import add_model_options, backend_options, find_mirror, model_card

NAME = "detect"
HELP = "run a model on images: annotated copies and a table of detections (board-ready)"


def configure(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or directories of images")
    p.add_argument("--out", default="out/detect", help="directory for the annotated images and detections "
                                                       "JSON (default: out/detect)")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="display threshold: draw and list detections scoring at least this (default 0.3); "
                        "evaluation never uses it")
    p.add_argument("--protocol", help="decode protocol from the card (default: the card's)")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"), help="annotated image format (default jpg)")
    p.add_argument("--json", action="store_true", help="print the detections as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from harness.common.summary import table
    from harness.measure.detect import TABLE_HEADER, check_settings, detect_and_save, table_rows
    from harness.models.images import list_images

    paths = list_images(args.images)  # a missing image or a bad option fails before the model is loaded
    card = model_card(args)
    check_settings(card, args.threshold, args.protocol, args.format)
    out = Path(args.out)
    result, saved = detect_and_save(card, find_mirror(args), backend_options(args), paths, out,
                                    score_threshold=args.threshold, protocol=args.protocol, fmt=args.format)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(table(TABLE_HEADER, table_rows(result)))
    print(f"\n{card.name}: {len(paths)} images, threshold {args.threshold:g}; annotated images and {saved.name} "
          f"in {out}/")
    return 0

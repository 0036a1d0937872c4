"""`harness detect MODEL IMAGE...`: annotated copies and a table of detections (board-ready)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import (
    add_board_options,
    add_model_options,
    add_out,
    add_quiet,
    backend_options,
    find_mirror,
    model_card,
)

NAME = "detect"
HELP = "run a model on images: annotated copies and a table of detections (board-ready)"


def configure(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or directories of images")
    add_out(p, "folder for the annotated images and the detections JSON", default="out/detect")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="display threshold: draw and list detections scoring at least this (default 0.3); "
                        "evaluation never uses it")
    p.add_argument("--protocol", help="decode protocol, one of the card's (see `harness zoo NAME`; default: the "
                                      "card's)")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"), help="annotated image format (default jpg)")
    p.add_argument("--print-json", action="store_true", help="print the detections as JSON instead of a table "
                                                            "(the detections JSON in --out is written either way)")
    add_quiet(p, "no table and no progress lines (a board's, with --on): only where the images went")
    add_board_options(p, records=False)


def run(args: argparse.Namespace) -> int:
    from harness.measure.detect import check_settings, detect_and_save
    from harness.models.images import list_images

    paths = list_images(args.images)  # a missing image or a bad option fails before the model is loaded
    card = model_card(args)
    check_settings(card, args.threshold, args.protocol, args.format)
    out = Path(args.out)
    if args.on:
        return run_on(args, card, paths, out)
    result, saved = detect_and_save(card, find_mirror(args), backend_options(args), paths, out,
                                    score_threshold=args.threshold, protocol=args.protocol, fmt=args.format)
    show(args, card, result, saved, len(paths), out)
    return 0


def show(args: argparse.Namespace, card, result: dict, saved: Path, count: int, out: Path) -> None:
    import json

    from harness.common.summary import table
    from harness.measure.detect import TABLE_HEADER, table_rows

    if args.print_json:
        print(json.dumps(result, indent=1))
        return
    if not args.quiet:
        print(table(TABLE_HEADER, table_rows(result)))
        print()
    print(f"{card.name}: {count} images, threshold {args.threshold:g}; annotated images and {saved.name} in {out}/")


def run_on(args: argparse.Namespace, card, paths: list[Path], out: Path) -> int:
    """--on: detect on each board; its annotated images and detections come back into --out (OUT/BOARD/ for
    several boards)."""
    from harness.boards.jobs import detect_job, detect_result
    from harness.cli.on import run_on_boards

    job = detect_job(card, backend_options(args, here=False), find_mirror(args), paths, args.threshold,
                     args.protocol, args.format)

    def finish(run, slug: str | None) -> None:
        where = out / slug if slug else out
        result, saved = detect_result(run, paths, where)
        show(args, card, result, saved, len(paths), where)

    return run_on_boards(args, job, finish)

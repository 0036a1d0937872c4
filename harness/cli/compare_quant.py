"""`harness compare quant FLOAT QUANT`: output error of a quantized model per head and per layer."""

from __future__ import annotations

import argparse

from harness.cli.options import (
    add_calibration_options,
    add_images,
    add_json,
    add_max_images,
    add_mirror,
    add_quiet,
    add_runtime,
    add_threads,
    calibration_options,
    find_mirror,
    write_record,
)

NAME = "quant"
HELP = "two models (float, quantized): output error per head and per layer"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="FLOAT", help="the float model (zoo name or path)")
    p.add_argument("b", metavar="QUANT", help="the quantized model (zoo name or path)")
    add_mirror(p)
    p.add_argument("--like", metavar="ZOO_NAME", help="a model path's contract (default for QUANT: FLOAT's card)")
    add_images(p, "images to compare on (default: the mirror's coco/val2017)")
    add_max_images(p, default=8)
    p.add_argument("--saved-model", metavar="DIR", help="the float SavedModel: adds the QuantizationDebugger's "
                                                        "layer-wise error (int8; default: none)")
    add_calibration_options(p)
    p.add_argument("--threshold-db", type=float, default=None, metavar="DB",
                   help="accumulated SNR below which a layer counts as bad (default 20)")
    p.add_argument("--evals", nargs=2, metavar=("FLOAT_JSON", "QUANT_JSON"),
                   help="eval records of the two models: adds the AP lost per class and per object size "
                        "(default: none)")
    add_runtime(p)
    add_threads(p, " for the per-head run")
    add_json(p, "quant_compare")
    add_quiet(p, "no progress bars")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.comparisons import compare_quant
    from harness.cli.format import print_quant_compare
    from harness.models.backends import BackendOptions

    record = compare_quant(args.a, args.b, mirror=find_mirror(args), like=args.like, images=args.images,
                           max_images=args.max_images, saved_model=args.saved_model,
                           calibration=calibration_options(args), threshold_db=args.threshold_db, evals=args.evals,
                           options=BackendOptions(threads=args.threads, runtime=args.runtime),
                           progress=not args.quiet)
    print_quant_compare(record)
    write_record(args.json, record)
    return 0

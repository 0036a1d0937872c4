"""`harness compare-quant FLOAT QUANT`: output error of a quantized model per head and per layer."""

from __future__ import annotations

import argparse

from harness.cli.options import add_quant_compare_options, calibration_options, find_mirror, write_record

NAME = "compare-quant"
HELP = "two models (float, quantized): output error per head and per layer"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="FLOAT", help="the float model (zoo name or path)")
    p.add_argument("b", metavar="QUANT", help="the quantized model (zoo name or path)")
    add_quant_compare_options(p)


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

"""`harness compare-paths MODEL A B`: one model under two execution paths, its output error and AP on each."""

from __future__ import annotations

import argparse

from harness.cli.options import find_mirror, write_record

NAME = "compare-paths"
HELP = "one model under two execution paths (XNNPACK, reference kernels, runtime, delegate): error and AP"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo name or a model path")
    p.add_argument("a", metavar="PATH_A", help="the yardstick path: KIND[@RUNTIME], KIND one of default, xnnpack, "
                                               "builtin, reference, delegate=LIB (e.g. reference)")
    p.add_argument("b", metavar="PATH_B", help="the path under test, same form (e.g. xnnpack, builtin@tf.lite)")
    p.add_argument("--model-b", metavar="MODEL", help="run path B on this model instead (another file of the "
                                                      "same network, e.g. the SavedModel against its .tflite)")
    p.add_argument("--mirror", help="models and images: the mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--coco", metavar="DIR", help="a COCO root with val2017 (default: the mirror's)")
    p.add_argument("--like", metavar="ZOO_NAME", help="for a model path: use this zoo card's contract")
    p.add_argument("--max-images", type=int, default=8, help="the first N labelled images (default 8)")
    p.add_argument("--threads", type=int, help="interpreter threads on both paths")
    p.add_argument("--no-tensors", action="store_true", help="heads and AP only, no per-tensor error")
    p.add_argument("--json", metavar="FILE", help="write the path_compare record here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.execution_paths.compare import compare_paths, format_summary

    record = compare_paths(args.model, args.a, args.b, mirror=find_mirror(args), like=args.like,
                           model_b=args.model_b, coco=args.coco, max_images=args.max_images, threads=args.threads,
                           tensors=not args.no_tensors, progress=not args.quiet)
    print(format_summary(record))
    write_record(args.json, record)
    return 0

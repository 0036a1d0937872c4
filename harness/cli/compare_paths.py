"""`harness compare paths MODEL A B`: one model under two execution paths, its output error and AP on each."""

from __future__ import annotations

import argparse

from harness.cli.options import (
    add_coco,
    add_json,
    add_like,
    add_max_images,
    add_mirror,
    add_quiet,
    add_threads,
    find_mirror,
    write_record,
)

NAME = "paths"
HELP = "one model under two execution paths (XNNPACK, reference kernels, runtime, delegate): error and AP"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo name or a model path")
    p.add_argument("a", metavar="PATH_A", help="the yardstick path: KIND[@RUNTIME], KIND one of default, xnnpack, "
                                               "builtin, reference, delegate=LIB (e.g. reference)")
    p.add_argument("b", metavar="PATH_B", help="the path under test, same form (e.g. xnnpack, builtin@tf.lite)")
    p.add_argument("--model-b", metavar="MODEL", help="run path B on this model instead (another file of the "
                                                      "same network, e.g. the SavedModel against its .tflite; "
                                                      "default: MODEL)")
    add_mirror(p)
    add_coco(p)
    add_like(p)
    add_max_images(p, default=8)
    add_threads(p, " on both paths")
    p.add_argument("--no-tensors", action="store_true", help="heads and AP only, no per-tensor error")
    add_json(p, "path_compare")
    add_quiet(p, "no progress bars")


def run(args: argparse.Namespace) -> int:
    from harness.analyse.execution_paths.compare import compare_paths, format_summary

    record = compare_paths(args.model, args.a, args.b, mirror=find_mirror(args), like=args.like,
                           model_b=args.model_b, coco=args.coco, max_images=args.max_images, threads=args.threads,
                           tensors=not args.no_tensors, progress=not args.quiet)
    print(format_summary(record))
    write_record(args.json, record)
    return 0

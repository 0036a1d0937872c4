"""`harness quantize SAVED_MODEL --output FILE`: a TFLite model with a replayable calibration set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.options import add_calibration_options, calibration_options

NAME = "quantize"
HELP = "quantize a float SavedModel to TFLite with a replayable calibration set"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("saved_model", help="the float SavedModel directory")
    p.add_argument("--output", required=True, metavar="FILE", help="the .tflite to write; the record of how it "
                                                                   "was made goes to FILE.json")
    p.add_argument("--mode", help="int8 (default; NXP's: int8 input, float outputs), 16x8, dynamic, float32")
    add_calibration_options(p)
    p.add_argument("--size", metavar="HxW", help="calibration image size when the SavedModel's input has none")
    p.add_argument("--float-layers", nargs="+", default=[], metavar="NAME",
                   help="keep these layers (op output tensor names, as `harness compare` lists them) in float")
    p.add_argument("--float-layers-from", metavar="FILE",
                   help="layer names to keep in float: a text file (one per line) or a `harness compare` record "
                        "(its top layers, see --float-top and --float-rank)")
    p.add_argument("--float-top", type=int, default=10, help="with a compare record: how many layers (default 10)")
    p.add_argument("--float-rank", choices=("share", "growth_db"), default="share",
                   help="with a compare record: rank by injected error share (default) or by error growth")
    p.add_argument("--float-ops", nargs="+", default=[], metavar="TYPE",
                   help="keep every layer of these op types in float, e.g. MUL ADD")
    p.add_argument("--eval-images", metavar="DIR", help="warn when calibration images are also here (default: "
                                                        "the mirror's coco/val2017)")
    p.add_argument("--mirror", help="the mirror (default: $HARNESS_MIRROR)")


def run(args: argparse.Namespace) -> int:
    from harness.models.mirror import Mirror
    from harness.quantize.options import plan_quantize, run_quantize

    mirror = Mirror.find(args.mirror)
    eval_dir = Path(args.eval_images) if args.eval_images else (mirror.val_images if mirror else None)
    plan = plan_quantize(args.saved_model, args.output, mode=args.mode, calibration=calibration_options(args),
                         size=args.size, eval_dir=eval_dir, layers=args.float_layers,
                         layers_from=args.float_layers_from, float_top=args.float_top, float_rank=args.float_rank,
                         ops=args.float_ops)
    cal, hits = plan.calibration, plan.overlap_names
    if hits:
        print(f"harness: warning: {len(hits)} of {len(cal.files)} calibration images are also evaluation images "
              f"in {plan.eval_dir} (e.g. {hits[0]}): AP measured there is flattered", file=sys.stderr)
    print(f"quantizing {args.saved_model} ({plan.mode.name}"
          + (f", {len(cal.files)} calibration images drawn by {cal.draw}" if cal else "")
          + (f", {len(plan.float_layers)} named layers and op types {args.float_ops or '-'} kept in float"
             if plan.float_layers or args.float_ops else "") + ") ...", flush=True)
    record = run_quantize(plan)
    out = record["output"]
    print(f"{args.output}: {out['bytes']} bytes, sha256 {out['sha256']}, input {out['input_dtype']}, "
          f"{record['convert_seconds']:.0f} s with TensorFlow {record['tensorflow']}")
    print(f"record: {plan.sidecar}")
    return 0

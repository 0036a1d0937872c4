"""Options several commands share, and turning them into the objects the applications take."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError

EXIT_USAGE = 2
EXIT_GATE_FAILED = 1  # `harness check`: a gate failed (bad input stays EXIT_USAGE)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """MODEL and how to run it: the options of eval, bench and detect."""
    p.add_argument("model", help="a zoo name (see `harness zoo`) or a path to a .tflite file / SavedModel directory")
    p.add_argument("--mirror", help="a local mirror laid out like ../shared/mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--like", metavar="ZOO_NAME", help="for a model path: use this zoo card's contract")
    p.add_argument("--decoder", help="for a model path: head layout (tfod_centernet, ltrb_centernet, postprocessed)")
    p.add_argument("--threads", type=int, help="interpreter threads (default: the runtime's)")
    p.add_argument("--runtime", help="TFLite runtime: ai-edge-litert, tflite-runtime or tf.lite (default: first found)")
    p.add_argument("--delegate", metavar="LIB", help="external delegate library, e.g. /usr/lib/libvx_delegate.so")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option for the external delegate (repeatable)")


def add_interval_options(p: argparse.ArgumentParser) -> None:
    """How sure is the AP: the bootstrap over images after scoring (eval and merge)."""
    p.add_argument("--ci-resamples", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for the confidence intervals of AP and the other stats "
                        "(default 1000; 0: no interval)")
    p.add_argument("--ci-level", type=float, default=0.95, metavar="LEVEL",
                   help="confidence level of those intervals (default 0.95)")


def add_record_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("records", nargs="*", help="run record files or directories of them")
    p.add_argument("--store", help="a record store (SQLite) to read, alone or with record files")


def add_calibration_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib", metavar="DIR", help="directory of calibration images")
    p.add_argument("--calib-list", metavar="FILE", help="replay these files of --calib in this order "
                                                         "(JSON array or one name per line)")
    p.add_argument("--recipe", help="a published recipe's settings: nxp (int8, shuffle with seed 1337, "
                                    "100 images, PIL's default resize)")
    p.add_argument("--count", type=int, help="calibration images to draw (default 100, or the recipe's)")
    p.add_argument("--seed", type=int, help="seed of the shuffle draw (default 0, or the recipe's)")
    p.add_argument("--draw", help="how to draw from --calib: shuffle (Python's random, as NXP) or sorted")
    p.add_argument("--resize", help="resize filter: bilinear (default, as the eval), pil-default, bicubic, ...")


def add_quant_compare_options(p: argparse.ArgumentParser) -> None:
    """The options of compare-quant (and of the `compare` alias, which may run it)."""
    p.add_argument("--mirror", help="models and images: the mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--like", metavar="ZOO_NAME", help="a model path's contract (default for B: A's card)")
    p.add_argument("--images", metavar="DIR", help="images to compare on (default: the mirror's coco/val2017)")
    p.add_argument("--max-images", type=int, default=8, help="the first N images by name (default 8)")
    p.add_argument("--saved-model", metavar="DIR", help="the float SavedModel: adds the QuantizationDebugger's "
                                                        "layer-wise error (int8)")
    add_calibration_options(p)
    p.add_argument("--threshold-db", type=float, default=None,
                   help="accumulated SNR below which a layer counts as bad (default 20)")
    p.add_argument("--evals", nargs=2, metavar=("FLOAT_JSON", "QUANT_JSON"),
                   help="eval records of the two models: adds the AP lost per class and per object size")
    p.add_argument("--runtime", help="TFLite runtime: ai-edge-litert, tflite-runtime or tf.lite")
    p.add_argument("--threads", type=int, help="interpreter threads for the per-head run")
    p.add_argument("--json", metavar="FILE", help="write the quant_compare record here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_board_options(p: argparse.ArgumentParser, *, records: bool = True, quiet: bool = True) -> None:
    """--on TARGET and what goes with it: the options of eval, bench and detect (harness.cli.on runs them).

    `records`: the command writes run records (--store applies); `quiet`: it has no --quiet of its own yet.
    """
    from harness.boards.targets import SPEC_HELP

    g = p.add_argument_group("on a board, over SSH")
    g.add_argument("--on", action="append", default=[], metavar="TARGET",
                   help=f"run on this board instead of here: {SPEC_HELP}; PATH is the board's Python with numpy, "
                        "Pillow and a TFLite runtime (default python3); repeatable: the boards run in parallel, "
                        "one record each, FILE.json becoming FILE.BOARD.json (default: run here)")
    g.add_argument("--accept-host-key", action="store_true",
                   help="trust a board whose SSH host key is not in known_hosts yet and record it there (default: "
                        "refuse it; a changed key is always refused); $HARNESS_SSH_CONFIG: an ssh_config to use")
    if records:
        g.add_argument("--store", metavar="STORE", help="with --on: add the boards' records to this record store "
                                                         "(SQLite; default: none)")
    if quiet:
        g.add_argument("--quiet", action="store_true", help="with --on: no progress lines from the board")


def backend_options(args: argparse.Namespace, *, here: bool = True):
    """--threads, --runtime, --delegate and its options, checked before any model is looked for.

    `here`: the delegate is a file of this machine (with --on it is the board's, checked there).
    """
    from harness.models.backends import BackendOptions

    opts = {}
    for item in args.delegate_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise HarnessError(f"--delegate-option wants KEY=VALUE, got {item!r}")
        opts[key] = value
    if args.threads is not None and args.threads < 1:
        raise HarnessError(f"--threads must be at least 1, got {args.threads} (leave it out for the runtime's default)")
    if here and args.delegate and not Path(args.delegate).is_file():
        raise HarnessError(f"cannot load delegate {args.delegate}: no such file (give the path of the delegate's .so)")
    return BackendOptions(threads=args.threads, runtime=args.runtime, delegate=args.delegate, delegate_options=opts)


def model_card(args: argparse.Namespace):
    """The card MODEL names: a zoo card, or one for a model path (--like / --decoder)."""
    from harness.models.zoo import ZOO, card_for

    if args.model in ZOO and (args.like or args.decoder):
        raise HarnessError("--like and --decoder are for a model path, not a zoo name")
    return card_for(args.model, args.like, args.decoder)


def find_mirror(args: argparse.Namespace):
    """--mirror, else $HARNESS_MIRROR, else None (harness.models.mirror.Mirror)."""
    from harness.models.mirror import Mirror

    return Mirror.find(args.mirror)


def calibration_options(args: argparse.Namespace):
    from harness.quantize.options import CalibrationOptions

    return CalibrationOptions(calib=args.calib, calib_list=args.calib_list, recipe=args.recipe, count=args.count,
                              seed=args.seed, draw=args.draw, resize=args.resize)


def write_record(path: str | None, record: dict) -> None:
    """--json FILE: the run record, written atomically, and a line saying where."""
    if path:
        from harness.common.fileio import write_json_atomic

        write_json_atomic(path, record, indent=1)
        print(f"run record: {path}")

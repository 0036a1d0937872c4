"""The house vocabulary of the `harness` command line, and the builders that define each shared flag once.

One concept, one spelling, on every command (tests/test_cli_surface.py checks every parser against it):

- `--out`: what a command writes. A folder (eval, detect, compile, report, demo), except for quantize, whose
  output is one .tflite file (harness.cli.paths.FILE_OUTPUTS says which by `dest`).
- `--json FILE`: the command's run record, written atomically. Nothing else is called --json (detect prints
  its detections as JSON with `--print-json`).
- `--gt FILE`: a ground-truth annotation file (instances_*.json). `--coco DIR`: a COCO root, val2017/ beside
  annotations/ (its images and their ground truth together; `auto` on eval: the official one, fetched).
- `--images DIR`: a folder of images a command runs on or checks against (bench, compare quant, quantize).
  `--calib DIR` is a different role: the images a quantizer calibrates on.
- `--max-images N`: the first N images of the image set in use, in image id order (MAX_IMAGES_HELP);
  each command's default is in its help.
- `--confidence LEVEL`: the confidence level of an interval (0.95); `--ci-resamples N` its bootstrap size.
- `--quiet`: no progress lines and no optional tables; results and where they went still print. Every command.
- `--mirror DIR`, `--like ZOO_NAME`, `--engine`, `--runtime`, `--decoder`, `--threads`: one builder each,
  their `choices=` fed from the registries (scoring engines, TFLite runtimes, decoders).

Every argument has help, and the default is shown (harness.cli.HelpFormatter appends it where the help
does not say it). New commands use the builders below instead of spelling a shared flag themselves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError

# A parser, an argument group or a mutually exclusive group: the builders add to any of them.
Container = argparse._ActionsContainer

EXIT_USAGE = 2
EXIT_GATE_FAILED = 1  # `harness check`: a gate failed (bad input stays EXIT_USAGE)

MAX_IMAGES_HELP = ("use only the first N images of the image set, in image id order (a folder without "
                   "annotations: file name order, the same for COCO's zero-padded names)")
MIRROR_HELP = "a local mirror of models and COCO (default: $HARNESS_MIRROR)"


def add_out(p: Container, what: str, *, default: str | None = None, required: bool = False,
            metavar: str = "DIR") -> None:
    """--out: what the command writes (`what` says what goes there)."""
    p.add_argument("--out", metavar=metavar, default=default, required=required,
                   help=what + (" (required)" if required else ""))


def add_json(p: Container, record: str = "run") -> None:
    """--json FILE: the command's record."""
    p.add_argument("--json", metavar="FILE", help=f"write the {record} record here (default: none)")


def add_quiet(p: Container, what: str = "no progress lines") -> None:
    """--quiet; `what` says what it leaves out on this command."""
    p.add_argument("--quiet", action="store_true", help=what)


def add_max_images(p: Container, default: int | None = None) -> None:
    p.add_argument("--max-images", type=int, default=default, metavar="N",
                   help=MAX_IMAGES_HELP + ("" if default else " (default: all)"))


def add_mirror(p: Container) -> None:
    p.add_argument("--mirror", metavar="DIR", help=MIRROR_HELP)


def add_like(p: Container, default: str | None = None) -> None:
    p.add_argument("--like", metavar="ZOO_NAME", default=default,
                   help="for a model path: use this zoo card's contract" + ("" if default else " (default: none)"))


def add_gt(p: Container, when: str, *, required: bool = False) -> None:
    p.add_argument("--gt", metavar="FILE", required=required,
                   help=f"ground truth, an instances_*.json annotation file: {when}")


def add_coco(p: Container, extra: str = "") -> None:
    p.add_argument("--coco", metavar="DIR", help="a COCO root, val2017/ beside annotations/instances_val2017.json "
                                                 f"(default: the mirror's coco/){extra}")


def add_images(p: Container, what: str) -> None:
    p.add_argument("--images", metavar="DIR", help=what)


def add_engine(p: Container) -> None:
    from harness.scoring.evaluator import DEFAULT_ENGINE, ENGINE_CHOICES

    p.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINE_CHOICES,
                   help="COCO scoring engine, all with pycocotools' numbers (the reference); auto: the fastest "
                        "installed of ultrafast, hotcoco, faster, pycocotools (default: auto)")


def add_runtime(p: Container, dest: str = "runtime", flag: str = "--runtime", what: str = "") -> None:
    from harness.models.backends.tflite_runtimes import RUNTIMES

    p.add_argument(flag, dest=dest, choices=list(RUNTIMES), metavar="NAME",
                   help=f"TFLite runtime{what}: {', '.join(RUNTIMES)} (default: the first one installed, in that "
                        "order)")


def add_threads(p: Container, what: str = "") -> None:
    p.add_argument("--threads", type=int, metavar="N", help=f"interpreter threads{what} (default: the runtime's)")


def add_confidence(p: Container, what: str, default: float | None = 0.95) -> None:
    """--confidence LEVEL: the level of an interval, wherever one is made (`what`: of which interval)."""
    p.add_argument("--confidence", type=float, default=default, metavar="LEVEL", help=f"confidence level {what}")


def add_resamples(p: Container, what: str) -> None:
    p.add_argument("--ci-resamples", type=int, default=1000, metavar="N", help=f"bootstrap resamples {what}")


def add_model_options(p: Container, *, optional: bool = False) -> None:
    """MODEL and how to run it: the options of eval, bench, detect and doctor."""
    from harness.models.decoders import DECODERS

    p.add_argument("model", nargs="?" if optional else None,
                   help="a zoo name (see `harness zoo`) or a path to a .tflite file / SavedModel directory"
                        + (" (leave out to examine detections that exist, --results)" if optional else ""))
    add_mirror(p)
    add_like(p)
    p.add_argument("--decoder", choices=list(DECODERS), help="for a model path: its head layout (default: the "
                                                            "--like card's)")
    add_threads(p)
    add_runtime(p)
    p.add_argument("--delegate", metavar="LIB", help="external delegate library, e.g. /usr/lib/libvx_delegate.so "
                                                     "(default: none, the CPU)")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option for the external delegate (repeatable; default: none)")


def add_interval_options(p: Container) -> None:
    """How sure is the AP: the bootstrap over images after scoring (eval)."""
    add_resamples(p, "for the confidence intervals of AP and the other stats (0: no interval)")
    add_confidence(p, "of those intervals")


def add_record_sources(p: Container) -> None:
    p.add_argument("records", nargs="*", help="run record files or directories of them (default: none, with "
                                              "--store)")
    p.add_argument("--store", metavar="STORE", help="a record store (SQLite) to read, alone or with record files "
                                                    "(default: none)")


def add_calibration_options(p: Container) -> None:
    from harness.models.images import RESIZE_FILTERS
    from harness.quantize.calibration import DRAWS
    from harness.quantize.modes import RECIPES

    p.add_argument("--calib", metavar="DIR", help="folder of calibration images (default: none; a quantize "
                                                  "search: the mirror's coco/val2017_unlabeled)")
    p.add_argument("--calib-list", metavar="FILE", help="replay these files of --calib in this order "
                                                         "(JSON array or one name per line; default: none)")
    p.add_argument("--recipe", choices=list(RECIPES), help="a published recipe's settings: nxp (int8, shuffle "
                                                           "with seed 1337, 100 images, PIL's default resize; "
                                                           "default: none)")
    p.add_argument("--count", type=int, metavar="N", help="calibration images to draw (default 100, or the recipe's)")
    p.add_argument("--seed", type=int, help="seed of the shuffle draw (default 0, or the recipe's)")
    p.add_argument("--draw", choices=list(DRAWS), help="how to draw from --calib: shuffle (Python's random, as NXP) "
                                                       "or sorted (default shuffle, or the recipe's)")
    p.add_argument("--resize", choices=list(RESIZE_FILTERS), help="resize filter (default bilinear, as the eval; "
                                                                  "or the recipe's)")


def add_board_options(p: Container, *, records: bool = True) -> None:
    """--on TARGET and what goes with it: the options of eval, bench and detect (harness.cli.on runs them;
    their --quiet also silences the board's progress lines).

    `records`: the command writes run records (--store applies).
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

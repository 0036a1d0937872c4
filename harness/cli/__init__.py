"""The `harness` command: evaluate, benchmark, detect, diagnose, quantize, compare, report and gate.

One module per command (harness/cli/<command>.py): each builds its subparser, checks its options, calls
one application function and prints from what it returns. Every user error becomes one line on stderr
(`harness: error: ...`) and exit status 2; results are written atomically, so an interrupted run never
leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from harness import __version__
from harness.cli import (
    bench,
    check,
    compare,
    compare_latency,
    compare_paths,
    compare_quant,
    demo,
    detect,
    doctor,
    fetch,
    merge,
    quantize,
    report,
    score,
    store,
    zoo,
)
from harness.cli import eval as eval_
from harness.cli.options import EXIT_GATE_FAILED, EXIT_USAGE
from harness.cli.paths import check_paths
from harness.errors import HarnessError, os_error_line

__all__ = ["COMMANDS", "EXIT_GATE_FAILED", "EXIT_USAGE", "build_parser", "main"]

# The registry, in the order `harness --help` lists them: each module has NAME, HELP, configure(parser)
# and run(args) -> exit status.
COMMANDS: dict[str, ModuleType] = {m.NAME: m for m in (
    eval_, merge, bench, detect, compare, compare_latency, compare_quant, compare_paths, quantize, score, doctor, zoo,
    demo, store, report, check, fetch,
)}


class _Parser(argparse.ArgumentParser):
    """Usage errors (a missing argument, `--max-images abc`) in the same one-line form as every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.HELP)
        module.configure(command)
        # How each argument is spelt on the command line, for errors about the paths it was given.
        command.set_defaults(flags={a.dest: a.option_strings[0] if a.option_strings else a.dest.upper()
                                    for a in command._actions})
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_paths(args.command, args)
        return COMMANDS[args.command].run(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a read or write the system refused, past the readers' own checks
        if exc.errno is None:
            raise
        print(f"harness: error: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130

"""The `harness` command: evaluate, benchmark, detect, diagnose, quantize, compare, report and gate.

One module per command (harness/cli/<command>.py; `compare`'s sub-verbs one each too): each builds its
subparser from the shared option builders of harness.cli.options (the house vocabulary: one spelling per
concept), checks its options, calls one application function and prints from what it returns. Every user
error becomes one line on stderr (`harness: error: ...`) and exit status 2; results are written atomically,
so an interrupted run never leaves a half-written file behind.
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
    demo,
    detect,
    doctor,
    fetch,
    quantize,
    report,
    store,
    zoo,
)
from harness.cli import compile as compile_
from harness.cli import eval as eval_
from harness.cli.options import EXIT_GATE_FAILED, EXIT_USAGE
from harness.cli.paths import check_paths
from harness.errors import HarnessError, os_error_line

__all__ = ["COMMANDS", "EXIT_GATE_FAILED", "EXIT_USAGE", "HelpFormatter", "build_parser", "main"]

# The registry, in the order `harness --help` lists them: each module has NAME, HELP, configure(parser)
# and run(args) -> exit status.
COMMANDS: dict[str, ModuleType] = {m.NAME: m for m in (
    eval_, bench, detect, compare, quantize, compile_, doctor, zoo, demo, store, report, check, fetch,
)}


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default in its help: appended as "(default: X)" unless the help already says it.

    An option whose default is None, off or empty says in its own words what happens when it is left out.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.option_strings and "default" not in text.lower() and action.default not in (None, False, [])
                and action.default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Usage errors (a missing argument, `--max-images abc`, a choice not in a registry) in the same one-line
    form and exit status as every other error: main() prints them."""

    def error(self, message: str) -> NoReturn:
        raise HarnessError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=(__doc__ or "").splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=HelpFormatter)
        module.configure(command)
        _record_spellings(command)
    return parser


def _record_spellings(parser: argparse.ArgumentParser) -> None:
    """How each argument is spelt on the command line (into args.flags), for errors about the paths it was
    given; a command with sub-verbs (compare) records them on each sub-verb's parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb in action.choices.values():
                _record_spellings(verb)
            return
    parser.set_defaults(flags={a.dest: a.option_strings[0] if a.option_strings else
                               a.metavar if isinstance(a.metavar, str) else a.dest.upper() for a in parser._actions})


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
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

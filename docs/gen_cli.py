"""MkDocs hook: the CLI reference, one page per command, generated from `harness.cli.build_parser()`.

Nothing about the flags is written twice: each page is the command's `--help` (usage and every argument)
and a table of its arguments with their help text and default, read from the parser when the site builds.
`python docs/gen_cli.py DIR` writes the same pages into DIR (to read them without MkDocs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SECTION = "CLI reference"
FOLDER = "cli"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, as `harness --help` lists it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = ["| argument | help | default |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.dest == "flags":  # set by build_parser for error messages, not an argument
            continue
        name = ", ".join(action.option_strings) or action.dest
        if action.option_strings and action.nargs != 0:
            name += f" {formatter._format_args(action, formatter._get_default_metavar_for_optional(action))}"
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            name += " {" + ",".join(map(str, action.choices)) + "}"
        default = action.default
        shown = "" if default in (None, argparse.SUPPRESS) or action.required or not action.option_strings \
            else f"`{default}`"
        rows.append(f"| `{_cell(name)}` | {_cell(formatter._expand_help(action) if action.help else '')} | "
                    f"{_cell(shown)} |")
    return rows


def command_page(name: str, parser: argparse.ArgumentParser, summary: str) -> str:
    lines = [f"# harness {name}", "", _cell(summary), "", "```text", parser.format_help().rstrip(), "```", "",
             *_argument_rows(parser), ""]
    for sub_name, sub in _subparsers(parser).items():
        lines += [f"## harness {name} {sub_name}", "", "```text", sub.format_help().rstrip(), "```", "",
                  *_argument_rows(sub), ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """{path under docs/: Markdown} for the index and every command, in `harness --help` order."""
    from harness.cli import build_parser

    root = build_parser()
    commands, helps = _subparsers(root), _helps(root)
    index = ["# CLI reference", "", "Generated from the argument parser (`harness.cli.build_parser`) when the site "
             "builds: each page is the command's `--help` and a table of its arguments.", "",
             "| command | what it does |", "| --- | --- |"]
    index += [f"| [`harness {n}`]({n}.md) | {_cell(helps.get(n, ''))} |" for n in commands]
    out = {f"{FOLDER}/index.md": "\n".join(index) + "\n"}
    for name, parser in commands.items():
        out[f"{FOLDER}/{name}.md"] = command_page(name, parser, helps.get(name, ""))
    return out


# --------------------------------------------------------------------------------------------------
# The MkDocs hook events


def on_config(config):
    """Add the CLI reference to the nav (the pages themselves appear in on_files)."""
    from harness.cli import COMMANDS

    entries = [{"Overview": f"{FOLDER}/index.md"}] + [{f"harness {n}": f"{FOLDER}/{n}.md"} for n in COMMANDS]
    if config.get("nav") is not None:
        config["nav"].append({SECTION: entries})
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "site-cli")
    for path, text in pages().items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text)
    print(f"{len(pages())} pages under {target}")

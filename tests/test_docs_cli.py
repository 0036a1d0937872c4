"""The CLI reference of the docs site is generated from the parser (docs/gen_cli.py, a MkDocs hook): one page
per registered command, naming every option of that command with its default."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from harness.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]


def _gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", REPO / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_page_per_command_and_an_index():
    pages = _gen_cli().pages()
    assert set(pages) == {"cli/index.md"} | {f"cli/{name}.md" for name in COMMANDS}
    for name in COMMANDS:
        assert f"]({name}.md)" in pages["cli/index.md"]


def test_every_option_appears_on_its_commands_page_with_its_default():
    pages = _gen_cli().pages()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        page = pages[f"cli/{name}.md"]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for flag in action.option_strings:
                assert f"`{flag}" in page or f", {flag}" in page, f"harness {name}: {flag} missing from its page"
            if action.option_strings and action.default not in (None, argparse.SUPPRESS, False, True) \
                    and action.dest != "flags":
                assert f"`{action.default}`" in page, f"harness {name} {action.option_strings[0]}: default not shown"

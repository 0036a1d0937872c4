"""Receipts: every measured table in README.md and docs/ is the rendering of an artifact committed under
benchmarks/results/ by a script of the repository (benchmarks/receipts.py), and nothing measured is quoted
outside the marked blocks."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _receipts():
    if "receipts" in sys.modules:
        return sys.modules["receipts"]
    spec = importlib.util.spec_from_file_location("receipts", REPO / "benchmarks" / "receipts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["receipts"] = module
    spec.loader.exec_module(module)
    return module


receipts = _receipts()
MARKDOWN = receipts.markdown_files()
ARTIFACTS = sorted(RESULTS.glob("*.json"))


def _blocks() -> list[tuple[Path, object]]:
    return [(f, m) for f in MARKDOWN for m in receipts.BLOCK.finditer(f.read_text())]


def _artifact(load_1min: float, nproc: int = 2) -> dict:
    return {"artifact": "t", "command": "python benchmarks/scaling.py", "date": "2026-01-02T03:04:05+00:00",
            "git_commit": "0123456789abcdef", "git_dirty": False,
            "machine": {"nproc": nproc, "cpu_model": "cpu", "python": "3.11.7"},
            "load_average": {"start": [load_1min, 0.0, 0.0], "end": [0.5, 0.0, 0.0]}, "wall_s": 1.0, "data": []}


def test_there_are_marked_blocks_and_artifacts():
    assert _blocks(), "no receipt block in README.md or docs/"
    assert ARTIFACTS


@pytest.mark.parametrize("where", [f"{f.relative_to(REPO)}: {m['path']} table={m['table']}" for f, m in _blocks()])
def test_every_marked_block_is_its_artifacts_rendering(where):
    """The expected text comes from the artifact (the measured numbers), not from the Markdown."""
    name, spec = where.split(": ", 1)
    path, table = spec.split(" table=")
    text = (REPO / name).read_text()
    bodies = [m["body"] for m in receipts.BLOCK.finditer(text) if (m["path"], m["table"]) == (path, table)]
    assert bodies and all(b == receipts.render(path, table) for b in bodies), \
        f"{name}: the block of {path} differs from its artifact; run `python benchmarks/receipts.py --write`"


@pytest.mark.parametrize("path", ARTIFACTS, ids=lambda p: p.name)
def test_every_artifact_says_how_where_and_when_it_was_measured(path):
    art = json.loads(path.read_text())
    assert {"artifact", "command", "date", "git_commit", "machine", "load_average", "data"} <= set(art)
    script = art["command"].split()[1]
    assert script.startswith("benchmarks/") and (REPO / script).is_file(), \
        f"{path.name} was written by {script}, which is not a script of the repository"
    assert len(art["git_commit"]) == 40 and art["machine"]["nproc"] >= 1 and art["machine"]["cpu_model"]
    assert len(art["load_average"]["start"]) == 3 and len(art["load_average"]["end"]) == 3


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_measured_is_quoted_outside_a_receipt_block(path):
    assert receipts.unmarked_measurements(path.read_text()) == []


def test_an_edited_figure_is_caught():
    m = next(m for _, m in _blocks() if any(c.isdigit() for c in m["body"]))
    rendered = m.group(0)
    digit = next(i for i, c in enumerate(m["body"]) if c.isdigit())
    body = m["body"][:digit] + str((int(m["body"][digit]) + 1) % 10) + m["body"][digit + 1:]
    edited = rendered.replace(m["body"], body)
    assert receipts.stale_blocks(rendered) == []
    assert receipts.stale_blocks(edited) == [f"{m['path']} table={m['table']}"]
    assert receipts.rerender(edited) == rendered


def test_a_measured_table_or_sentence_outside_the_markers_is_caught():
    table = "| model | p50 ms |\n| --- | --- |\n| f32 | 47.9 |\n"
    assert receipts.unmarked_measurements(table) == ["table: | model | p50 ms |"]
    assert receipts.unmarked_measurements("The demo, measured here, took 168 s.\n")
    assert receipts.unmarked_measurements("A table of names:\n\n| name | what |\n| --- | --- |\n| a | b |\n") == []
    fenced = "```text\n| model | p50 ms |\n| --- | --- |\n```\n"
    assert receipts.unmarked_measurements(fenced) == []


@pytest.mark.parametrize("load, nproc, under", [(2.5, 2, True), (2.0, 2, False), (0.3, 2, False), (9.0, 16, False)])
def test_a_table_measured_with_the_load_above_the_core_count_says_so(load, nproc, under):
    art = _artifact(load, nproc)
    assert receipts.under_load(art) is under
    assert ("Measured under load" in receipts.caption(art)) is under
    assert receipts.caption(art).startswith("*Measured")

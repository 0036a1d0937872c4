"""The package's shape as a rule: each layer imports only from layers below it.

Measuring (models, scoring, records, measure) must run on a board, so it may never reach into the
boards layer (reaching boards from the host: SSH, board farms, NPU compilers), the analysing wing
(analyse, quantize) or the CLI; the CLI sits on top and only parses and prints.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "harness"

# Lowest first. A module may import from its own layer and the layers before it.
LAYERS = ["common", "models", "scoring", "records", "measure", "boards", "quantize", "analyse", "cli"]
BASE = {"errors": 0, "__init__": 0, "__main__": len(LAYERS)}  # top-level modules of the package
MAX_LINES = 400


def layer_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "harness", module
    if len(parts) == 1:
        return 0
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return BASE[parts[1]]


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if node.module == "harness":  # `from harness import x`: x is the module imported
                names = [f"harness.{a.name}" for a in node.names if a.name != "__version__"]
            found += [(node.lineno, n) for n in names[:1] if n.startswith("harness")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("harness")]
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_it(path: Path) -> None:
    own = layer_of(module_name(path))
    above = [f"line {line}: {name} ({LAYERS[layer_of(name)] if layer_of(name) < len(LAYERS) else name})"
             for line, name in imports_of(path) if layer_of(name) > own]
    assert not above, f"{module_name(path)} ({LAYERS[own] if own < len(LAYERS) else 'top'}) imports from above: {above}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines; split it by job"


def test_the_layer_rule_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from harness.analyse.check import run_gates\nfrom harness.models import zoo\n")
    names = [n for _, n in imports_of(bad)]
    assert names == ["harness.analyse.check", "harness.models"]
    assert layer_of("harness.analyse.check") > layer_of("harness.measure.runner") > layer_of("harness.models.zoo")

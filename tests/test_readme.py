"""The README is the front door: at most 10 kB, the two quick-start commands, an example whose printed output
is the command's real output, a command table that names every command as its parser does, links that
resolve."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

from harness.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAX_BYTES = 10_000  # "no longer than 10 kB"
# The developers' guide: "The README's quick start has two commands that work on a fresh machine".
QUICK_START = ("python3 -m pip install nox uv && python3 -m nox -s demo",
               "python3 -m pip install nox uv && python3 -m nox -s tests")


def _text() -> str:
    return README.read_text()


def _gen_cli():
    spec = importlib.util.spec_from_file_location("gen_cli", REPO / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_at_most_10_kB():
    assert README.stat().st_size <= MAX_BYTES, f"README.md is {README.stat().st_size} bytes; move detail to docs/"


def test_the_quick_start_has_the_demo_and_the_tests_commands():
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", _text(), re.S)
    assert block, "no ```sh block under ## Quick start"
    commands = [line.split("#")[0].strip() for line in block[1].splitlines() if line.strip()]
    assert tuple(commands) == QUICK_START
    noxfile = (REPO / "noxfile.py").read_text()
    assert "def demo(" in noxfile and "def tests(" in noxfile  # the sessions the commands name exist


def test_the_command_table_is_the_parsers_one_line_helps():
    """One row per command, each help as `harness --help` gives it, in the registry's order (a new command
    must add its row)."""
    gen = _gen_cli()
    helps = gen._helps(build_parser())
    rows = re.findall(r"^\| `harness ([\w-]+)` \| (.*) \|$", _text(), re.M)
    assert [name for name, _ in rows] == list(COMMANDS), "README.md's command table and harness.cli.COMMANDS differ"
    for name, text in rows:
        assert text == gen._cell(helps[name]), f"the README's row for harness {name} is not its parser help"


def test_every_relative_link_resolves():
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text()):
        if not re.match(r"\w+://", target):
            assert (REPO / target).exists(), f"README.md links to {target}, which does not exist"


def test_the_doctor_example_prints_what_the_readme_shows(mirror, tmp_path, monkeypatch, capsys):
    """Runs the README's own snippet (plant the fault) and command, with ../shared/mirror pointing at the mirror.
    The expected output is the README's text; the AP after the fix must be pycocotools' published AP for this
    results file (the cocoapi demo's, in the mirror's known_answer/EXPECTED.txt)."""
    text = _text()
    snippet = re.search(r"python3 - <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    console = re.search(r"```console\n\$ (harness doctor .*?)\n(.*?)```", text, re.S)
    assert snippet and console, "the README's example (snippet and console block) is missing"
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "mirror").symlink_to(mirror)
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    exec(compile(snippet[1], "README.md", "exec"), {})  # the README's own code, run as a reader would
    argv = shlex.split(console[1])
    assert argv[0] == "harness"
    assert main(argv[1:]) == 1
    printed = capsys.readouterr().out
    assert printed.strip("\n") == console[2].strip("\n")
    top = console[2].splitlines()[1].split()
    expected = (mirror / "coco" / "known_answer" / "EXPECTED.txt").read_text()
    published_ap = float(re.search(r"^bbox \(instances_val2014_fakebbox100_results\.json\): ([\d.]+)",
                                   expected, re.M)[1])
    assert top[:2] == ["1", "box-xyxy"] and float(top[3]) == round(100 * published_ap, 1)


def test_every_docs_page_the_package_cites_exists():
    """`docs/design.md` was cited by the zoo while the repository had no such file."""
    cited = {(str(p.relative_to(REPO)), page) for p in (REPO / "harness").rglob("*.py")
             for page in re.findall(r"\bdocs/[\w/.-]+\.md\b", p.read_text())}
    missing = sorted((src, page) for src, page in cited if not (REPO / page).is_file())
    assert not missing, f"cited but not in the repository: {missing}"

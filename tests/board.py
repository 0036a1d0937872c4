"""Run `harness` in a fresh process and report which heavy packages it imported.

A board has numpy, Pillow and a TFLite runtime only: the commands that run there (eval, bench, detect of a
.tflite) must never import TensorFlow, the report stack or scipy. A fresh interpreter is the only honest
test (the test process itself has imported them all).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

HEAVY = ("tensorflow", "pandas", "matplotlib", "scipy")

# `python -c BOARD_CHECK_CODE ARGV_JSON WATCH_JSON [HIDE_JSON]`; also run inside an emulated board (tests/arm64/).
# HIDE: packages made unimportable first, as on a board that lacks them (a path that falls back must).
BOARD_CHECK_CODE = """\
import importlib.abc, json, sys
hide = set(json.loads(sys.argv[3])) if len(sys.argv) > 3 else set()
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in hide:
            raise ModuleNotFoundError(f'No module named {name!r} (hidden: not on this board)', name=name)
sys.meta_path.insert(0, Hide())
from harness.cli import main
rc = main(json.loads(sys.argv[1]))
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print('\\nBOARD-CHECK ' + json.dumps({'rc': rc, 'heavy': heavy}))
"""


@dataclass
class BoardRun:
    rc: int
    heavy: list[str]  # the packages of HEAVY (or `watch`) the process imported
    stdout: str  # what the command printed, without the check's own line


def run_board_command(argv: Sequence[object], watch: Sequence[str] = HEAVY, hide: Sequence[str] = ()) -> BoardRun:
    """`harness ARGV` in a new interpreter, HIDE made unimportable; fails the test if the process itself fails."""
    args = [*board_check_args(argv, watch), json.dumps(list(hide))]
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return parse_board_check(proc.stdout)


def board_check_args(argv: Sequence[object], watch: Sequence[str] = HEAVY) -> list[str]:
    """The interpreter's arguments that run `harness ARGV` and report the WATCH packages it imported."""
    return ["-c", BOARD_CHECK_CODE, json.dumps([str(a) for a in argv]), json.dumps(list(watch))]


def parse_board_check(stdout: str) -> BoardRun:
    body, _, last = stdout.rstrip().rpartition("\nBOARD-CHECK ")
    result = json.loads(last)
    return BoardRun(result["rc"], result["heavy"], body)

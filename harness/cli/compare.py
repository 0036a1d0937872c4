"""`harness compare A B`: the old name of compare-latency (two .json records) and compare-quant (two models).

Kept so scripts keep working; it says which one it ran.
"""

from __future__ import annotations

import argparse

from harness.cli import compare_latency, compare_quant
from harness.cli.options import add_quant_compare_options
from harness.errors import HarnessError

NAME = "compare"
HELP = ("two bench records: latency on the same host; two models (float, quantized): output error per head "
        "and per layer")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="a bench record .json, or the float model (zoo name or path)")
    p.add_argument("b", help="a bench record .json, or the quantized model (zoo name or path)")
    add_quant_compare_options(p)


def run(args: argparse.Namespace) -> int:
    records = [str(x).endswith(".json") for x in (args.a, args.b)]
    if any(records) and not all(records):
        raise HarnessError("compare takes two bench records (.json) or two models (zoo names or paths), not one "
                           "of each")
    command = compare_latency if all(records) else compare_quant
    print(f"harness compare: running {command.NAME}")
    return command.run(args)

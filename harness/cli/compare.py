"""`harness compare latency|quant|paths`: the comparisons, one command with a sub-verb each (as `store`).

- latency A.json B.json: two bench records of one host, stat by stat (harness.cli.compare_latency);
- quant FLOAT QUANT: a quantized model's output error per head and per layer (harness.cli.compare_quant);
- paths MODEL A B: one model under two execution paths, its error and AP on each (harness.cli.compare_paths).
"""

from __future__ import annotations

import argparse
from types import ModuleType

from harness.cli import compare_latency, compare_paths, compare_quant

NAME = "compare"
HELP = "compare two bench records (latency), a float and a quantized model (quant), or two execution paths (paths)"

# sub-verb -> module with NAME, HELP, configure(parser) and run(args), in the order `harness compare --help` lists
VERBS: dict[str, ModuleType] = {m.NAME: m for m in (compare_latency, compare_quant, compare_paths)}


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", required=True, metavar="{" + ",".join(VERBS) + "}",
                           help="what to compare")
    for name, module in VERBS.items():
        verb = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=p.formatter_class)
        module.configure(verb)


def run(args: argparse.Namespace) -> int:
    return VERBS[args.what].run(args)

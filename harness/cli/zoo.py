"""`harness zoo [NAME]`: list the model cards, or show one."""

from __future__ import annotations

import argparse

from harness.cli.options import add_quiet

NAME = "zoo"
HELP = "list the model cards, or show one"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a zoo name: print its card as JSON (default: list every card)")
    add_quiet(p, "the list as names only, one a line (for scripts)")


def run(args: argparse.Namespace) -> int:
    import json

    from harness.common.summary import table
    from harness.models.zoo import ZOO, get_card

    if args.name:
        print(json.dumps(get_card(args.name).to_dict(), indent=1))
        return 0
    if args.quiet:
        print("\n".join(ZOO))
        return 0
    rows = [(c.name, c.backend, c.decoder, f"{c.baseline.ap:.1f}" if c.baseline else "-",
             c.baseline.split if c.baseline else "", c.baseline.protocol if c.baseline else "",
             ", ".join(c.protocols)) for c in ZOO.values()]
    print(table(["model", "backend", "decoder", "published AP", "split", "measured under", "protocols"], rows))
    return 0

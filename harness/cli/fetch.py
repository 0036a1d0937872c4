"""`harness fetch NAME...`: datasets (coco-val2017, coco-annotations-2017) and zoo models into the cache, verified."""

from __future__ import annotations

import argparse

from harness.cli.options import add_json, add_mirror, add_quiet, find_mirror, write_record

NAME = "fetch"
HELP = "download and verify datasets (coco-val2017, coco-annotations-2017, test-dev2017's) or zoo models into the cache"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="dataset manifests (datasets/*.json) or zoo names; none: list the "
                                            "datasets")
    add_mirror(p)  # a model found there is not downloaded
    add_json(p, "fetch")
    add_quiet(p, "no progress bar")


def run(args: argparse.Namespace) -> int:
    if not args.names:
        from harness.models.datasets import DatasetArchive, available

        for name in available():
            m = DatasetArchive.load(name)
            size = f"{m.size} bytes" if m.size is not None else "no published size or sha256 (pinned on first download)"
            print(f"{name}  {size}  {m.url}  {m.description}")
        return 0
    from harness.measure.acquire import fetch_named

    record = fetch_named(args.names, find_mirror(args), progress=False if args.quiet else None)
    print_fetched(record["items"])
    write_record(args.json, record)
    return 0


def print_fetched(items: list[dict]) -> None:
    """One line per item: downloaded (from where, how verified) or already there; only checks really made."""
    for item in items:
        pin = item.get("pin")
        pinned = (f"outputs checked against the card's contract, pinned on first use: sha256 "
                  f"{item['content_sha256']} in {item['pins_file']}" if pin == "new" else
                  f"matches the sha256 pinned on first use in {item['pins_file']}" if pin == "verified" else None)
        if not item["downloaded"]:
            print(f"{item['name']}: already here, {item['path']}" + (f"; {pinned}" if pinned else ""))
            continue
        if item["kind"] == "dataset" and item.get("pinned") == "new":
            check = f"nothing published to check; sha256 {item['sha256']} pinned by this first download"
        elif item["kind"] == "dataset" and item.get("pinned"):
            check = "size and sha256 match the pin of its first download"
        elif item["kind"] == "dataset":
            check = "size and sha256 match the manifest" + ("" if item["confirmed"] else
                                                             " (this download confirms its published values)")
        elif item["confirmed"]:
            check = "sha256 matches the card"
        else:
            check = f"no published sha256; got {item['sha256']} (recorded)" + (f", {pinned}" if pinned else "")
        print(f"{item['name']}: downloaded {item['bytes']} bytes from {item['from']}, {check} -> {item['path']}")


def coco_option(args: argparse.Namespace, card, mirror):
    """--coco as `harness eval` uses it: `auto` fetches the model and val2017 (saying what it did) and
    becomes the cache's COCO root; anything else passes through."""
    if args.coco != "auto":
        return args.coco
    from harness.measure.acquire import fetch_for_eval

    root, fetched = fetch_for_eval(card, mirror, progress=False if args.quiet else None)
    print_fetched(fetched)
    return root

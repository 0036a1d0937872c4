"""`harness store import|export|list STORE`: the SQLite record store."""

from __future__ import annotations

import argparse

from harness.errors import HarnessError

NAME = "store"
HELP = "the SQLite record store: import, export or list run records"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("import", "export", "list"))
    p.add_argument("store", help="the store file, e.g. reports/runs.sqlite (created by import)")
    p.add_argument("paths", nargs="*", help="import: record files or directories; export: one .json file or a "
                                            "directory")


def run(args: argparse.Namespace) -> int:
    from harness.common.summary import table
    from harness.records.reader import collect
    from harness.records.store import RecordStore, export_records

    if args.action == "import":
        if not args.paths:
            raise HarnessError("store import needs record files or directories to import")
        records = collect(args.paths)
        with RecordStore(args.store) as store:
            added = store.add(records, where="import")
            print(f"{args.store}: {added} new of {len(records)} records ({store.count()} in the store)")
        return 0
    with RecordStore(args.store, create=False) as store:
        records = store.records()
    if args.action == "export":
        if len(args.paths) != 1:
            raise HarnessError("store export needs one destination: a .json file or a directory")
        dest = export_records(records, args.paths[0])
        print(f"{len(records)} records -> {dest}")
        return 0
    rows = [(r["kind"], r.get("model", {}).get("name", "") if isinstance(r.get("model"), dict) else "",
             r["host"]["fingerprint"], r.get("created")) for r in records]
    print(table(["kind", "model", "host", "created"], rows))
    return 0

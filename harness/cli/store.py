"""`harness store import|export|list|set-aside|ack STORE`: the SQLite record store.

`import` also reads the text output of TFLite's `benchmark_model --enable_op_profiling=true` (per-op time
measured on a board) into an op_profile record (harness.records.op_profile).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.options import add_quiet
from harness.errors import HarnessError
from harness.records.selection import fields

NAME = "store"
HELP = "the SQLite record store: import, export, list or set aside run records; acknowledge a regression"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("import", "export", "list", "set-aside", "ack"),
                   help="import records or logs; export them; list the rows; set-aside: hide rows from every "
                        "reader for good; ack: accept a series' regression as of a commit, so `check "
                        "--change-points` passes until the next one (both append: the store stays append-only)")
    p.add_argument("store", help="the store file, e.g. reports/runs.sqlite (created by import)")
    p.add_argument("paths", nargs="*", help="import: record files or directories, or benchmark_model op-profiling "
                                            "logs; export: one .json file or a directory; set-aside: row numbers "
                                            "(as `store list` shows them); ack: SERIES COMMIT (as `check "
                                            "--change-points` prints them)")
    p.add_argument("--reason", help="set-aside, ack: why, kept with the row (default: set aside by hand / "
                                    "acknowledged by hand)")
    p.add_argument("--host", metavar="NAME", help="import of a benchmark_model log: the board it ran on "
                                                  "(its host in the record; default unknown-board)")
    add_quiet(p, "import, export, set-aside, ack: no summary line (list still prints its table)")


def run(args: argparse.Namespace) -> int:
    from harness.common.summary import table
    from harness.records.reader import collect
    from harness.records.store import RecordStore, export_records

    if args.action == "import":
        if not args.paths:
            raise HarnessError("store import needs record files or directories to import")
        from harness.records.op_profile import looks_like_op_profile, op_profile_record

        logs = [p for p in args.paths if looks_like_op_profile(p)]
        records = collect([p for p in args.paths if p not in logs]) + [op_profile_record(p, args.host) for p in logs]
        with RecordStore(args.store) as store:
            added = store.add(records, where="import")
            if not args.quiet:
                print(f"{args.store}: {added} new of {len(records)} records ({store.count()} in the store)")
        return 0
    if args.action == "set-aside":
        return _set_aside(args)
    if args.action == "ack":
        return _ack(args)
    if args.action == "export":
        _check_export_destination(args)
    with RecordStore(args.store, create=False) as store:
        rows = store.rows()
        skipped = store.skipped
    records = [r for _, r in rows if r is not None]
    for line in skipped:
        print(f"harness: warning: {line}", file=sys.stderr)
    if args.action == "export":
        if len(args.paths) != 1:
            raise HarnessError("store export needs one destination: a .json file or a directory")

        dest = export_records(records, args.paths[0])
        if not args.quiet:
            print(f"{len(records)} records -> {dest}")
        return 0
    print(table(["row", "kind", "model", "host", "created"], [
        (row, "unreadable", "", "", "") if r is None else
        (row, r["kind"], m.get("name", "") if isinstance(m := fields(r).get("model"), dict) else "",
         r["host"]["fingerprint"], r.get("created")) for row, r in rows]))
    return 0


def _check_export_destination(args: argparse.Namespace) -> None:
    """Before the store is opened: the destination is one new .json file or a directory, never the store."""
    if len(args.paths) != 1:
        raise HarnessError("store export needs one destination: a .json file or a directory")
    dest = Path(args.paths[0])
    if dest.exists() and dest.resolve() == Path(args.store).resolve():
        raise HarnessError(f"store export destination {dest} is the store itself; give a .json file or a directory")
    if dest.exists() and not dest.is_dir() and dest.suffix != ".json":
        raise HarnessError(f"store export destination {dest} is a file; give a .json file or a directory")


def _set_aside(args: argparse.Namespace) -> int:
    from harness.records.store import RecordStore

    if not args.paths:
        raise HarnessError("store set-aside needs the row numbers to set aside (see `harness store list STORE`)")
    try:
        ids = [int(p) for p in args.paths]
    except ValueError:
        raise HarnessError(f"store set-aside takes row numbers, got {' '.join(args.paths)}") from None
    with RecordStore(args.store, create=False) as check:
        check.count()
    with RecordStore(args.store) as store:
        for row_id in ids:
            store.set_aside(row_id, args.reason or "set aside by hand")
        if not args.quiet:
            print(f"{args.store}: set aside row {', '.join(map(str, ids))} ({store.count()} records remain visible)")
    return 0


def _ack(args: argparse.Namespace) -> int:
    """Append an acknowledgement, after checking the series and the commit are in the store."""
    from harness.analyse.history import build
    from harness.records.store import RecordStore

    if len(args.paths) != 2:
        raise HarnessError("store ack needs SERIES COMMIT: the series id and commit `harness check --change-points` "
                           "prints for a regression")
    sid, commit = args.paths
    with RecordStore(args.store, create=False) as check:
        found = {s.id: s for s in build(check.records())}
    if sid not in found:
        raise HarnessError(f"{args.store} has no series {sid} (`harness check --store {args.store} --change-points "
                           "--max-slowdown R` names each series' id)")
    commits = [p.commit for p in found[sid].points]
    match = [c for c in commits if c == commit or (len(commit) >= 7 and c.startswith(commit))]
    if not match:
        raise HarnessError(f"series {sid} has no run of commit {commit}; give one of its commits (the newest is "
                           f"{commits[-1]})")
    with RecordStore(args.store) as store:
        store.acknowledge(sid, match[-1], args.reason or "acknowledged by hand")
    if not args.quiet:
        print(f"{args.store}: acknowledged series {sid} ({found[sid].label}) as of commit {match[-1][:12]}")
    return 0

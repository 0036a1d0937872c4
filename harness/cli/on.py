"""`--on TARGET` for eval, bench and detect: run one job on each board in parallel, one record each.

Not a command: the shared path the three commands take when --on is given. Several --on run in threads;
each board's outputs are finished here one after another (scored, printed, written), so the output of two
boards never interleaves. With several boards, --json FILE and the detections get the board in their name
(run.json -> run.root@board1_2222.json).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.errors import HarnessError


def board_file(path: str | Path, slug: str | None) -> Path:
    """FILE, or FILE with the board before its suffix when several boards write one each."""
    path = Path(path)
    return path if slug is None else path.with_name(f"{path.stem}.{slug}{path.suffix}")


def run_on_boards(args: argparse.Namespace, job, finish: Callable[[object, str | None], dict | None], *,
                  record_file: str | None = None, restart: bool = False) -> int:
    """JOB (harness.boards.remote.BoardJob) on every --on target; FINISH(run, slug) turns each board's outputs
    into its record (printed there) or None; records go to --json FILE (one per board) and --store."""
    from harness.boards.remote import copied_line, run_job
    from harness.boards.targets import parse_targets
    from harness.cli.options import write_record
    from harness.records import provenance

    targets = parse_targets(args.on)
    lock = threading.Lock()

    def echo(line: str) -> None:
        with lock:
            print(line, file=sys.stderr, flush=True)

    several = len(targets) > 1
    with tempfile.TemporaryDirectory(prefix="harness-on-") as tmp, ThreadPoolExecutor(len(targets)) as pool:
        futures = [pool.submit(run_job, t, job, Path(tmp) / str(n), accept_host_key=args.accept_host_key,
                               restart=restart, echo=None if args.quiet else echo) for n, t in enumerate(targets)]
        errors: list[str] = []
        records: list[dict] = []
        for target, future in zip(targets, futures, strict=True):
            try:
                run = future.result()
            except HarnessError as exc:
                errors.append(str(exc))
                continue
            echo(copied_line(run))
            slug = target.slug if several else None
            record = finish(run, slug)
            if record is not None:
                # The code measured is this checkout's, bundled to the board, and the CI run is this one:
                # the board itself sees neither (no git there, none of the CI's variables).
                record["provenance"] = provenance.describe()
                records.append(record)
                if record_file:
                    write_record(str(board_file(record_file, slug)), record)
    if getattr(args, "store", None) and records:
        from harness.records.store import RecordStore

        with RecordStore(args.store) as store:
            added = store.add(records, where="board record")
        print(f"store: {added} record{'s' if added != 1 else ''} added to {args.store}")
    if errors:
        for line in errors[:-1]:
            print(f"harness: error: {line}", file=sys.stderr)
        raise HarnessError(errors[-1])
    return 0

"""The record store: one SQLite file, append-only, safe with several writer processes.

Why SQLite: a board, a CI runner and a workstation each need a place to keep run records with no server
to run. Several `harness` processes (a matrix of jobs on one runner, or a loop of benches) may append at
once: WAL mode plus `BEGIN IMMEDIATE` and a generous busy timeout serialise the writers without losing a
record. Rows are never updated or deleted (triggers refuse it), and a record's content hash is unique,
so importing the same JSON files twice (a board's results copied back) merges rather than duplicates.

A record that cannot be read back (imported by an older harness that checked less) is skipped with a
warning that names its row, and `set_aside` hides a row for good by appending a tombstone row to a table
of its own: the store stays append-only and one bad import never breaks every later report. `acknowledge`
appends, the same way, a row saying a team accepts a series' regression as of a commit (harness.analyse.history).
Readers open the file read-only, so a store on read-only media (or another user's) can still be reported.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from harness.errors import HarnessError
from harness.records.schema import digest, validate
from harness.records.selection import fields
from harness.records.types import RunRecord

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    schema_version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created TEXT,
    model TEXT,
    host_fingerprint TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, model, host_fingerprint);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'the record store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'the record store is append-only'); END;
CREATE TABLE IF NOT EXISTS set_aside (
    record_id INTEGER PRIMARY KEY REFERENCES records(id),
    reason TEXT NOT NULL,
    created TEXT
);
CREATE TRIGGER IF NOT EXISTS set_aside_no_update BEFORE UPDATE ON set_aside
    BEGIN SELECT RAISE(ABORT, 'the record store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS set_aside_no_delete BEFORE DELETE ON set_aside
    BEGIN SELECT RAISE(ABORT, 'the record store is append-only'); END;
CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created TEXT
);
CREATE TRIGGER IF NOT EXISTS acks_no_update BEFORE UPDATE ON acks
    BEGIN SELECT RAISE(ABORT, 'the record store is append-only'); END;
CREATE TRIGGER IF NOT EXISTS acks_no_delete BEFORE DELETE ON acks
    BEGIN SELECT RAISE(ABORT, 'the record store is append-only'); END;
"""
BUSY_TIMEOUT_S = 60.0


class RecordStore:
    """Append and read run records in one SQLite file."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        """`create=False` opens an existing store read-only: what every reader (report, check, export) does."""
        self.path = Path(path)
        self.skipped: list[str] = []  # rows that records() could not read, each as one line
        if not create and not self.path.is_file():
            raise HarnessError(f"record store not found: {self.path} (create one with `harness store import`)")
        if self.path.exists() and self.path.is_dir():
            raise HarnessError(f"record store {self.path} is a directory; give a file such as runs.sqlite")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
                self._retry(lambda: self._db.executescript(_SCHEMA))
            else:
                self._db = self._open_read_only()
        except sqlite3.DatabaseError as exc:
            if create and ("readonly" in str(exc) or "unable to open" in str(exc)):
                raise HarnessError(f"cannot write the record store {self.path}: {exc} (read-only media or no "
                                   "permission; import into a store you may write)") from None
            raise HarnessError(f"{self.path} is not a harness record store: {exc}") from None
        except OSError as exc:
            raise HarnessError(f"cannot create the record store {self.path}: {exc.strerror}") from None

    def _open_read_only(self) -> sqlite3.Connection:
        """Read-only; on media where SQLite cannot make the WAL's shared-memory file, as an immutable file."""
        uri = self.path.resolve().as_uri()
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{uri}?{flags}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                db.execute("SELECT COUNT(*) FROM records").fetchone()
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                if "no such table" in str(exc):
                    raise sqlite3.DatabaseError("no records table") from None
                last = exc
        raise last

    def _retry(self, op: Callable[[], T], attempts: int = 50) -> T:
        """Schema set-up and WAL switch can see SQLITE_BUSY before the busy handler applies; retry briefly."""
        for i in range(attempts):
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, records: Iterable[object], where: str = "record") -> int:
        """Validate and append records in one transaction; returns how many were new (duplicates are skipped)."""
        rows = []
        for i, rec in enumerate(records):
            valid = validate(rec, f"{where} #{i + 1}")
            model = fields(valid).get("model")
            name = model.get("name") if isinstance(model, dict) else None
            rows.append((digest(valid), valid["schema_version"], valid["kind"], valid.get("created"), name,
                         valid["host"]["fingerprint"], json.dumps(valid, separators=(",", ":"))))
        if not rows:
            return 0

        def write() -> int:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                cur.executemany("INSERT OR IGNORE INTO records (digest, schema_version, kind, created, model, "
                                "host_fingerprint, body) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                added = self._db.total_changes - before
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return added

        return self._retry(write)

    def records(self, kind: str | None = None) -> list[RunRecord]:
        """Every record in insertion order, validated on read; rows set aside are left out, and a row that
        cannot be read is left out with one line in `self.skipped` that names it."""
        return [rec for _, rec in self.rows(kind) if rec is not None]

    def rows(self, kind: str | None = None) -> list[tuple[int, RunRecord | None]]:
        """(row id, record) in insertion order; None for a row that cannot be read (see `skipped`)."""
        aside = self._set_aside_ids()
        args: tuple[str, ...] = (kind,) if kind else ()
        sql = "SELECT id, body FROM records" + (" WHERE kind = ?" if kind else "")
        out: list[tuple[int, RunRecord | None]] = []
        self.skipped = []
        for row_id, body in self._db.execute(sql + " ORDER BY id", args):
            if row_id in aside:
                continue
            where = f"{self.path} row {row_id}"
            try:
                out.append((row_id, validate(json.loads(body), where)))
            except json.JSONDecodeError as exc:
                self._skip(row_id, f"{where}: stored record is not JSON ({exc.msg})")
                out.append((row_id, None))
            except HarnessError as exc:
                self._skip(row_id, str(exc))
                out.append((row_id, None))
        return out

    def _skip(self, row_id: int, why: str) -> None:
        self.skipped.append(f"{why}; skipped (`harness store set-aside {self.path} {row_id}` hides it for good)")

    def _set_aside_ids(self) -> set[int]:
        try:
            return {r for (r,) in self._db.execute("SELECT record_id FROM set_aside")}
        except sqlite3.OperationalError:  # a store made before set-aside existed, opened read-only
            return set()

    def set_aside(self, row_id: int, reason: str) -> None:
        """Hide one row from every reader, for good, by appending a tombstone (the row itself stays)."""
        import datetime as dt

        if self._db.execute("SELECT 1 FROM records WHERE id = ?", (row_id,)).fetchone() is None:
            raise HarnessError(f"{self.path} has no row {row_id} (`harness store list {self.path}` shows the rows)")
        if row_id in self._set_aside_ids():
            raise HarnessError(f"{self.path} row {row_id} is already set aside")
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._retry(lambda: self._db.execute("INSERT INTO set_aside (record_id, reason, created) VALUES (?, ?, ?)",
                                             (row_id, reason, now)))

    def acknowledge(self, series: str, commit: str, reason: str) -> None:
        """Append an acknowledgement: `series` (an id `harness check --change-points` prints) as of `commit`."""
        import datetime as dt

        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        sql = "INSERT INTO acks (series, commit_id, reason, created) VALUES (?, ?, ?, ?)"
        self._retry(lambda: self._db.execute(sql, (series, commit, reason, now)))

    def acks(self) -> list[dict[str, str]]:
        """Every acknowledgement, oldest first."""
        try:
            rows = self._db.execute("SELECT series, commit_id, reason, created FROM acks ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # a store made before acknowledgements existed, opened read-only
            return []
        return [{"series": s, "commit": c, "reason": r, "created": t} for s, c, r, t in rows]

    def count(self) -> int:
        """Records a reader sees: every row less those set aside."""
        total = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return total - len(self._set_aside_ids())


def export_records(records: Sequence[RunRecord], dest: str | Path) -> Path:
    """Write records as one JSON list (dest ends in .json) or one file per record in a directory."""
    from harness.common.fileio import write_json_atomic

    dest = Path(dest)
    if dest.suffix == ".json":
        return write_json_atomic(dest, records, indent=1)
    dest.mkdir(parents=True, exist_ok=True)
    for rec in records:
        block = fields(rec).get("model")
        model = block.get("name", "none") if isinstance(block, dict) else "none"
        name = f"{rec['kind']}_{model}_{rec['host']['fingerprint']}_{digest(rec)[:12]}.json"
        write_json_atomic(dest / name.replace("/", "_"), rec, indent=1)
    return dest

"""The record store: one SQLite file, append-only, safe with several writer processes.

Why SQLite: a board, a CI runner and a workstation each need a place to keep run records with no server
to run. Several `harness` processes (a matrix of jobs on one runner, or a loop of benches) may append at
once: WAL mode plus `BEGIN IMMEDIATE` and a generous busy timeout serialise the writers without losing a
record. Rows are never updated or deleted (triggers refuse it), and a record's content hash is unique,
so importing the same JSON files twice (a board's results copied back) merges rather than duplicates.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.records.schema import digest, validate

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
"""
BUSY_TIMEOUT_S = 60.0


class RecordStore:
    """Append and read run records in one SQLite file."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise HarnessError(f"record store not found: {self.path} (create one with `harness store import`)")
        if self.path.exists() and self.path.is_dir():
            raise HarnessError(f"record store {self.path} is a directory; give a file such as runs.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._retry(lambda: self._db.executescript(_SCHEMA))
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"{self.path} is not a harness record store: {exc}") from None

    def _retry(self, op, attempts: int = 50):
        """Schema set-up and WAL switch can see SQLITE_BUSY before the busy handler applies; retry briefly."""
        for i in range(attempts):
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))
        return None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, records: Iterable[dict], where: str = "record") -> int:
        """Validate and append records in one transaction; returns how many were new (duplicates are skipped)."""
        rows = []
        for i, rec in enumerate(records):
            rec = validate(rec, f"{where} #{i + 1}")
            fp = rec.get("host", {}).get("fingerprint")
            model = rec.get("model", {}).get("name") if isinstance(rec.get("model"), dict) else None
            rows.append((digest(rec), rec["schema_version"], rec["kind"], rec.get("created"), model, fp,
                         json.dumps(rec, separators=(",", ":"))))
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

    def records(self, kind: str | None = None) -> list[dict]:
        """Every record in insertion order, validated on read (a corrupted row is named by its id)."""
        sql, args = "SELECT id, body FROM records", ()
        if kind:
            sql, args = sql + " WHERE kind = ?", (kind,)
        out = []
        for row_id, body in self._db.execute(sql + " ORDER BY id", args):
            where = f"{self.path} row {row_id}"
            try:
                rec = json.loads(body)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{where}: stored record is not JSON ({exc.msg})") from None
            out.append(validate(rec, where))
        return out

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def export_records(records: list[dict], dest: str | Path) -> Path:
    """Write records as one JSON list (dest ends in .json) or one file per record in a directory."""
    from harness.common.fileio import write_json_atomic

    dest = Path(dest)
    if dest.suffix == ".json":
        return write_json_atomic(dest, records, indent=1)
    dest.mkdir(parents=True, exist_ok=True)
    for rec in records:
        model = (rec.get("model") or {}).get("name", "none") if isinstance(rec.get("model"), dict) else "none"
        name = f"{rec['kind']}_{model}_{rec['host']['fingerprint']}_{digest(rec)[:12]}.json"
        write_json_atomic(dest / name.replace("/", "_"), rec, indent=1)
    return dest

"""One bad record never breaks a store: refused at import, left out (and named) at read, set aside for good.

The hollow record is the one a user met: an eval record whose `results` block is empty. Imported by a
harness that checked less, it made every `report --store` and `check --store` die with KeyError.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from fake_records import bench_record, eval_record

from harness.cli import main
from harness.records.store import RecordStore


def hollow(rec: dict) -> dict:
    rec = json.loads(json.dumps(rec))
    rec["results"] = {}
    return rec


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def store_with_a_hollow_row(path: Path) -> None:
    """Two good records, then the hollow one written straight into SQLite, as an older harness let in."""
    with RecordStore(path) as store:
        store.add([eval_record("mb3-centernet-f32", 0.285), bench_record("mb3-centernet-f32", [0.02, 0.021, 0.022])])
    db = sqlite3.connect(path)
    db.execute("INSERT INTO records (digest, schema_version, kind, body) VALUES ('hollow', 3, 'eval', ?)",
               (json.dumps(hollow(eval_record("mb3-centernet-int8", 0.17))),))
    db.commit()
    db.close()


@pytest.mark.parametrize("edit, where", [
    (hollow, "results.stats"),
    (lambda r: {**r, "results": {"stats": {"AP": "0.3"}}}, "results.stats.AP"),
    (lambda r: {**r, "results": {"stats": {"AP": float("nan")}}}, "NaN"),  # refused by the JSON reader itself
])
def test_a_record_readers_would_crash_on_is_refused_at_import_with_its_file_named(tmp_path, capsys, edit,
                                                                                 where) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(edit(eval_record("mb3-centernet-f32", 0.285))))
    store = tmp_path / "runs.sqlite"
    rc, _, err = run_cli(capsys, "store", "import", store, bad)
    assert rc == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "bad.json" in err and where in err


def test_a_store_with_a_hollow_row_still_reports_and_names_the_row(tmp_path, capsys) -> None:
    store = tmp_path / "runs.sqlite"
    store_with_a_hollow_row(store)
    rc, out, err = run_cli(capsys, "report", "--store", store, "--out", tmp_path / "report")
    assert rc == 0, err
    assert "mb3-centernet-f32" in out
    warnings = [line for line in err.splitlines() if line.startswith("harness: warning:")]
    assert len(warnings) == 1 and "row 3" in warnings[0] and "results.stats" in warnings[0]
    rc, out, err = run_cli(capsys, "check", "--store", store, "--expect", "mb3-centernet-f32=28.5",
                           "--ap-tolerance", "0.5")
    assert rc == 0 and "Traceback" not in err, err


def test_setting_a_row_aside_hides_it_for_good_and_the_store_stays_append_only(tmp_path, capsys) -> None:
    store = tmp_path / "runs.sqlite"
    store_with_a_hollow_row(store)
    rc, out, err = run_cli(capsys, "store", "set-aside", store, "3", "--reason", "hollow results")
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "store", "list", store)
    assert rc == 0 and "warning" not in err and "unreadable" not in out
    with RecordStore(store, create=False) as s:
        assert s.count() == 2
    db = sqlite3.connect(store)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM set_aside")
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 3  # the row itself is still there
    rc, _, err = run_cli(capsys, "store", "set-aside", store, "9")
    assert rc == 2 and "no row 9" in err


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="a read-only mount needs root")
def test_a_store_on_read_only_media_can_be_listed_and_reported(tmp_path, capsys) -> None:
    media = tmp_path / "media"
    media.mkdir()
    with RecordStore(media / "runs.sqlite") as s:
        s.add([eval_record("mb3-centernet-f32", 0.285)])
    subprocess.run(["mount", "--bind", str(media), str(media)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(media)], check=True)
        rc, out, err = run_cli(capsys, "store", "list", media / "runs.sqlite")
        assert rc == 0 and "mb3-centernet-f32" in out, err
        rc, out, err = run_cli(capsys, "report", "--store", media / "runs.sqlite", "--out", tmp_path / "rep")
        assert rc == 0, err
        rc, out, err = run_cli(capsys, "store", "import", media / "runs.sqlite", tmp_path / "nothing.json")
        assert rc == 2 and len(err.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", "-l", str(media)], check=False)

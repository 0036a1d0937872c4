"""The record store: append-only SQLite, safe with several writers, JSON in and out, validated on read."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import sqlite3

import pytest
from fake_records import bench_record, eval_record

from harness.cli import main
from harness.errors import HarnessError
from harness.records.schema import SCHEMA_VERSION, digest, read_record_file
from harness.records.store import RecordStore, export_records


def test_records_come_back_validated_and_in_insertion_order(tmp_path):
    recs = [eval_record("mb3-centernet-f32", 0.28, created=f"2026-01-0{i}") for i in range(1, 4)]
    with RecordStore(tmp_path / "s.sqlite") as store:
        assert store.add(recs) == 3
        back = store.records()
    assert [r["created"] for r in back] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert back[0]["schema_version"] == SCHEMA_VERSION


def test_importing_the_same_record_twice_stores_it_once(tmp_path):
    rec = eval_record("mb3-centernet-f32", 0.28)
    with RecordStore(tmp_path / "s.sqlite") as store:
        assert store.add([rec]) == 1
        assert store.add([rec, rec]) == 0
        assert store.count() == 1


def test_the_store_refuses_updates_and_deletes(tmp_path):
    path = tmp_path / "s.sqlite"
    with RecordStore(path) as store:
        store.add([eval_record("mb3-centernet-f32", 0.28)])
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE records SET kind = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM records")


def _insert_raw(path, body: str) -> None:
    db = sqlite3.connect(path)
    db.execute("INSERT INTO records (digest, schema_version, kind, body) VALUES (?, 1, 'eval', ?)",
               (f"raw-{hash(body)}", body))
    db.commit()
    db.close()


@pytest.mark.parametrize("body, message", [
    ("{not json", "row 2: stored record is not JSON"),
    (json.dumps({"schema": "centernet-harness/run", "schema_version": 99, "kind": "eval"}),
     "schema_version 99 is newer than this harness reads"),
    (json.dumps({"schema": "something-else"}), "not a harness run record"),
])
def test_a_bad_stored_row_is_named_on_read_and_left_out(tmp_path, body, message):
    path = tmp_path / "s.sqlite"
    with RecordStore(path) as store:
        store.add([eval_record("mb3-centernet-f32", 0.28)])
    _insert_raw(path, body)
    with RecordStore(path, create=False) as store:
        assert [r["model"]["name"] for r in store.records()] == ["mb3-centernet-f32"]
        assert len(store.skipped) == 1 and message in store.skipped[0]
        assert "row 2" in store.skipped[0] and "set-aside" in store.skipped[0]


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    bad = tmp_path / "s.sqlite"
    bad.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(HarnessError, match="not a harness record store"):
        RecordStore(bad)


def test_version_1_records_are_upgraded_with_the_cards_family_and_precision(tmp_path):
    rec = eval_record("mb3-centernet-int8", 0.01)
    rec["schema_version"] = 1
    del rec["model"]["family"], rec["model"]["precision"]
    f = tmp_path / "old.json"
    f.write_text(json.dumps(rec))
    (up,) = read_record_file(f)
    assert up["model"]["family"] == "mb3-centernet" and up["model"]["precision"] == "int8"


def test_board_records_exported_as_json_merge_into_the_workstation_store(tmp_path):
    board = [bench_record("mb3-centernet-int8", [0.30, 0.31, 0.32], "imx8mp"),
             bench_record("mb3-centernet-f32", [0.50, 0.51, 0.52], "imx8mp")]
    ws = [eval_record("mb3-centernet-f32", 0.28), board[0]]  # one record is already on the workstation
    with RecordStore(tmp_path / "board.sqlite") as s:
        s.add(board)
    assert main(["store", "export", str(tmp_path / "board.sqlite"), str(tmp_path / "copied")]) == 0
    assert main(["store", "export", str(tmp_path / "board.sqlite"), str(tmp_path / "copied.json")]) == 0
    with RecordStore(tmp_path / "ws.sqlite") as s:
        s.add(ws)
    assert main(["store", "import", str(tmp_path / "ws.sqlite"), str(tmp_path / "copied")]) == 0
    assert main(["store", "import", str(tmp_path / "ws.sqlite"), str(tmp_path / "copied.json")]) == 0
    with RecordStore(tmp_path / "ws.sqlite") as s:
        merged = s.records()
    assert sorted(digest(r) for r in merged) == sorted({digest(r) for r in board + ws})


@pytest.mark.parametrize("content, message", [
    ("{oops", "not JSON"),
    ("[]", "holds no run records"),
    ('{"schema": "centernet-harness/run", "schema_version": 7, "kind": "eval"}', "schema_version 7 is newer"),
    ('{"schema": "centernet-harness/run", "schema_version": 2, "kind": "eval", "host": {"fingerprint": "x"}}',
     "eval record lacks model, dataset, results, backend"),
    ('[1, 2]', r"\[0\]: not a run record"),
])
def test_importing_a_malformed_file_fails_with_one_line_and_adds_nothing(tmp_path, capsys, content, message):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(eval_record("mb3-centernet-f32", 0.28)))
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    store = tmp_path / "s.sqlite"
    assert main(["store", "import", str(store), str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error:") and err.count("\n") == 1
    assert re.search(message, err)
    with RecordStore(store) as s:
        assert s.count() == 0  # the good file was not half-imported either


def test_export_of_a_missing_store_is_an_input_error(tmp_path, capsys):
    assert main(["store", "export", str(tmp_path / "none.sqlite"), str(tmp_path / "x.json")]) == 2
    assert "record store not found" in capsys.readouterr().err


def _writer(path: str, worker: int, n: int, barrier) -> None:
    with RecordStore(path) as store:
        barrier.wait(60)  # every writer has its connection open: now all of them write at once
        for i in range(n):
            rec = bench_record("mb3-centernet-int8", [0.3 + 0.001 * i, 0.31], "imx8mp",
                               created=f"2026-11-21T00:{worker:02d}:{i:02d}")
            store.add([rec])


def test_eight_processes_writing_fifty_records_each_leave_four_hundred_readable(tmp_path):
    """Eight writers released together by a barrier (started one by one, the first would be done before the
    last began): 8 x 50 records, none lost, none doubled."""
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")  # fresh interpreters, as eight separate `harness` processes would be
    barrier = ctx.Barrier(8)
    procs = [ctx.Process(target=_writer, args=(path, w, 50, barrier)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    with RecordStore(path) as store:
        recs = store.records()
    assert len(recs) == 400
    assert len({digest(r) for r in recs}) == 400


def test_export_names_files_so_that_none_overwrites_another(tmp_path):
    recs = [bench_record("mb3-centernet-int8", [0.3, 0.31 + i / 100], "imx8mp") for i in range(5)]
    out = export_records(recs, tmp_path / "dir")
    assert len(list(out.glob("*.json"))) == 5

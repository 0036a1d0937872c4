"""`harness store import LOG`: TFLite benchmark_model's op-profiling output read into an op_profile record.

tests/data/benchmark_model_op_profile_int8.txt is a sample written by hand in the tool's documented format (the
profile summary of `benchmark_model --enable_op_profiling=true`: "Run Order", "Top by Computation Time" and
"Summary by node type" tables with tab-separated, right-aligned fields, a "Timings (microseconds)" line, the
XNNPACK "Replacing N out of M node(s)" line). Its numbers are invented, shaped like mb3-centernet int8 on a
2-thread board with XNNPACK leaving the three RELUs to the CPU; every expected value below is read off that file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.records.op_profile import looks_like_op_profile, op_profile_record, parse_op_profile
from harness.records.store import RecordStore

SAMPLE = Path(__file__).parent / "data" / "benchmark_model_op_profile_int8.txt"


def test_the_sample_reads_into_init_and_run_profiles():
    body = parse_op_profile(SAMPLE.read_text())
    init, run = body["profiles"]
    assert (init["phase"], run["phase"]) == ("init", "run")
    assert [o["node_type"] for o in init["ops"]] == ["ModifyGraphWithDelegate", "AllocateTensors"]
    assert len(run["ops"]) == 7  # Run Order only: the Top-by-time table repeats these rows
    relu = run["ops"][1]
    assert relu == {"node_type": "RELU", "first_ms": 0.511, "avg_ms": 0.466, "percent": 0.551,
                    "cdf_percent": 26.319, "mem_kb": 0.0, "times_called": 1,
                    "name": "[tower_0/CenterNetFeatureExtractor/p4_relu]:180"}
    by_type = {r["node_type"]: r for r in run["by_type"]}
    assert by_type["TfLiteXNNPackDelegate"]["count"] == 4 and by_type["RELU"]["count"] == 3
    assert by_type["RELU"]["avg_ms"] == pytest.approx(0.466 + 0.902 + 1.802)
    assert sum(o["avg_ms"] for o in run["ops"]) == pytest.approx(84.617)
    assert run["timings_us"]["avg"] == 84617 and run["timings_us"]["count"] == 50
    assert body["delegation"] == [{"delegate": "TfLiteXNNPackDelegate", "replaced": 198, "of": 201,
                                   "partitions": 4}]


def test_a_log_prefix_before_the_tabs_is_ignored():
    lines = SAMPLE.read_text().splitlines()
    prefixed = "\n".join(f"I0101 12:00:00.000 stat_summarizer.cc:85] {line}" for line in lines)
    assert parse_op_profile(prefixed)["profiles"] == parse_op_profile(SAMPLE.read_text())["profiles"]


def test_store_import_keeps_the_board_as_host(tmp_path, capsys):
    store = tmp_path / "runs.sqlite"
    assert main(["store", "import", str(store), str(SAMPLE), "--host", "imx8mp-evk"]) == 0
    assert "1 new of 1 records" in capsys.readouterr().out
    with RecordStore(store, create=False) as s:
        (record,) = s.records(kind="op_profile")
    assert record["host"]["fingerprint"] == "imported:imx8mp-evk"
    assert record["model"]["name"] == "raw_int8.tflite" and record["source"]["tool"] == "benchmark_model"
    assert main(["store", "list", str(store)]) == 0
    assert "op_profile" in capsys.readouterr().out


def test_a_log_without_profiling_tables_is_one_line_error(tmp_path, capsys):
    log = tmp_path / "plain.txt"
    log.write_text("count=50 first=84420 curr=84877 min=83702 max=89115 avg=84932.3 std=912\n"
                   "============================== Run Order ==============================\n"
                   "============================== Summary by node type ==============================\n")
    assert looks_like_op_profile(log)
    with pytest.raises(HarnessError, match="--enable_op_profiling=true"):
        op_profile_record(log)
    assert main(["store", "import", str(tmp_path / "s.sqlite"), str(log)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_json_record_is_not_taken_for_a_log(tmp_path):
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps({"note": "Run Order / Summary by node type"}))
    assert not looks_like_op_profile(rec) and looks_like_op_profile(SAMPLE)

"""`harness store import LOG`: TFLite benchmark_model's op-profiling output read into an op_profile record.

Every log read here is real tool output quoted from a public source (tests/data/benchmark_model/README.md
names each source and what was trimmed). Each expected value below was read off the quoted log text by eye
(a row's columns, a summary row, the Timings / memory / "Replacing" lines), not taken from the parser.
The one test input that is not a verbatim quote is marked as a mutation of a real log.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.records.op_profile import looks_like_op_profile, op_profile_record, parse_op_profile
from harness.records.store import RecordStore

DATA = Path(__file__).parent / "data" / "benchmark_model"
TF28 = DATA / "tf2.8_qemuriscv64_mobilenet_v1_start_column.txt"  # 9 columns, [start]
IMX_NPU = DATA / "imx_vx_delegate_npu_mobilenet_v1_quant.log"  # 9 columns, [start], VX delegate (NPU)
TC2 = DATA / "tc2_xnnpack_mobile_object_localizer_excerpt.txt"  # 8 columns, XNNPACK kernels, INFO: prefixes
LITERT = DATA / "litert_sme2_fc_fp32_excerpt.txt"  # 8 columns, LiteRT tool, "Replacing" line, memory block
SPACES = DATA / "tf_issue25021_spaces_start_column_excerpt.txt"  # [start] layout pasted with tabs as spaces
TF_CORE = DATA / "tf_core_issue2807_other_layout_excerpt.txt"  # TensorFlow's own layout: not TFLite's
REAL_LOGS = (TF28, IMX_NPU, TC2, LITERT, SPACES)


def _read(path: Path) -> dict:
    return parse_op_profile(path.read_text(encoding="utf-8"))


def test_tf28_start_column_is_read_by_header_not_taken_for_the_type():
    """The 9-column layout that used to label every op's type with its start time ("0.066")."""
    body = _read(TF28)
    init, run = body["profiles"]
    assert (init["phase"], run["phase"]) == ("init", "run")
    assert init["ops"] == [{"node_type": "AllocateTensors", "start_ms": 0.0, "first_ms": 1.356, "avg_ms": 1.356,
                            "percent": 100.0, "cdf_percent": 100.0, "mem_kb": 0.0, "times_called": 1,
                            "name": "AllocateTensors/0"}]
    assert "[start]" in run["columns"]
    assert len(run["ops"]) == 31  # "Number of nodes executed: 31"; the Top-by table's rows are not added
    assert run["ops"][0] == {"node_type": "CONV_2D", "start_ms": 0.066, "first_ms": 87.754, "avg_ms": 60.957,
                             "percent": 2.066, "cdf_percent": 2.066, "mem_kb": 0.0, "times_called": 1,
                             "name": "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0"}
    last = run["ops"][-1]
    assert (last["node_type"], last["start_ms"], last["avg_ms"], last["name"]) == \
        ("SOFTMAX", 2950.011, 0.233, "[MobilenetV1/Predictions/Reshape_1]:30")
    assert {o["node_type"] for o in run["ops"]} == {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "SQUEEZE",
                                                     "SOFTMAX"}
    by_type = {r["node_type"]: (r["count"], r["avg_ms"], r["percent"]) for r in run["by_type"]}
    assert by_type == {"CONV_2D": (15, 2651.853, 89.897), "DEPTHWISE_CONV_2D": (13, 296.919, 10.065),
                       "AVERAGE_POOL_2D": (1, 0.869, 0.029), "SOFTMAX": (1, 0.232, 0.008),
                       "SQUEEZE": (1, 0.016, 0.001)}
    # the tool's own summary counts agree with the Run Order rows read
    assert Counter(o["node_type"] for o in run["ops"]) == {k: v[0] for k, v in by_type.items()}
    assert run["timings_us"]["count"] == 50 and run["timings_us"]["avg"] == 2.9499e+06
    assert body["memory"] == {"init_mb": 4.21094, "overall_mb": 46.0859,
                              "printed_as": ["Memory footprint delta from the start of the tool (MB)"]}
    assert body["delegation"] == []


def test_imx_npu_log_reads_the_vx_delegate_node_and_the_older_memory_line():
    body = _read(IMX_NPU)
    init, run = body["profiles"]
    assert [(o["node_type"], o["start_ms"], o["first_ms"], o["times_called"]) for o in init["ops"]] == \
        [("ModifyGraphWithDelegate", 0.0, 1.185, 1), ("AllocateTensors", 1.176, 0.073, 2)]
    assert run["ops"] == [{"node_type": "Vx Delegate", "start_ms": 0.010, "first_ms": 2.509, "avg_ms": 2.504,
                           "percent": 100.0, "cdf_percent": 100.0, "mem_kb": 0.0, "times_called": 1,
                           "name": "[MobilenetV1/Predictions/Reshape_1]:31"}]
    assert run["by_type"] == [{"node_type": "Vx Delegate", "count": 1, "avg_ms": 2.503, "percent": 100.0,
                               "cdf_percent": 100.0, "mem_kb": 0.0, "times_called": 1}]
    assert run["timings_us"]["count"] == 379 and run["timings_us"]["avg"] == 2503.71
    assert body["memory"] == {"init_mb": 7.26953, "overall_mb": 34.3164,
                              "printed_as": ["Peak memory footprint (MB)"]}
    assert body["delegation"] == []  # the external delegate prints no "Replacing N out of M" line


def test_tc2_xnnpack_log_without_start_reads_kernel_names_with_spaces():
    body = _read(TC2)
    init, run = body["profiles"]
    assert [o["node_type"] for o in init["ops"]] == ["ModifyGraphWithDelegate", "AllocateTensors"]
    assert init["ops"][0]["mem_kb"] == 3428.0
    assert "[start]" not in run["columns"] and all("start_ms" not in o for o in run["ops"])
    assert len(run["ops"]) == 15  # the excerpt keeps 10 + 5 of the table's 115 rows
    assert run["ops"][0] == {"node_type": "Convolution (NHWC, QU8) IGEMM", "first_ms": 0.267, "avg_ms": 0.278,
                             "percent": 3.783, "cdf_percent": 3.783, "mem_kb": 0.0, "times_called": 1,
                             "name": "Delegate/Convolution (NHWC, QU8) IGEMM:0"}
    last = run["ops"][-1]
    assert (last["node_type"], last["avg_ms"], last["percent"]) == ("TFLite_Detection_PostProcess", 1.339, 18.197)
    assert last["name"] == ("[TFLite_Detection_PostProcess, TFLite_Detection_PostProcess:1, "
                            "TFLite_Detection_PostProcess:2, TFLite_Detection_PostProcess:3]:114")
    by_type = {r["node_type"]: (r["count"], r["avg_ms"]) for r in run["by_type"]}
    assert len(by_type) == 8 and sum(c for c, _ in by_type.values()) == 115  # "115 nodes observed"
    assert by_type["Convolution (NHWC, QU8) GEMM"] == (54, 3.340)
    assert by_type["Copy (NC, X8)"] == (13, 0.0)
    assert run["timings_us"]["count"] == 67 and run["timings_us"]["avg"] == 7360.09
    assert body["memory"]["init_mb"] == 8.44922 and body["memory"]["overall_mb"] == 10.8789


def test_litert_log_reads_delegation_and_its_memory_block():
    body = _read(LITERT)
    (run,) = body["profiles"]  # no phase heading before the tables: one run-phase profile
    assert run["phase"] == "run"
    assert [o["node_type"] for o in run["ops"]] == ["LiteRT::Run[buffer registration]", "AllocateTensors",
                                                     "Static Reshape (NC)", "Fully Connected (NC, PF32) GEMM",
                                                     "LiteRT::Run[Buffer sync]"]
    fc = run["ops"][3]
    assert (fc["first_ms"], fc["avg_ms"], fc["percent"], fc["name"]) == \
        (0.538, 0.382, 92.948, "Delegate/Fully Connected (NC, PF32) GEMM:1")
    alloc = run["ops"][1]
    assert (alloc["mem_kb"], alloc["times_called"]) == (452.0, 0)
    assert run["by_type"][0] == {"node_type": "Fully Connected (NC, PF32) GEMM", "count": 1, "avg_ms": 0.382,
                                 "percent": 93.171, "cdf_percent": 93.171, "mem_kb": 0.0, "times_called": 1}
    assert run["timings_us"]["count"] == 3166 and run["timings_us"]["avg"] == 411.071
    assert body["delegation"] == [{"delegate": "TfLiteXNNPackDelegate", "replaced": 1, "of": 1, "partitions": 1}]
    memory = body["memory"]
    assert (memory["init_mb"], memory["overall_mb"], memory.get("peak_mb")) == (8.94, 11.51, None)


def test_a_log_pasted_with_spaces_for_tabs_is_read():
    (run,) = _read(SPACES)["profiles"]
    assert [(o["node_type"], o["start_ms"], o["first_ms"], o["avg_ms"], o["name"]) for o in run["ops"]] == \
        [("DEPTHWISE_CONV_2D", 0.000, 0.802, 0.719, "[Relu6]"), ("FULLY_CONNECTED", 0.719, 0.848, 0.849,
                                                                 "[BiasAdd_1]")]


@pytest.mark.parametrize("log", [TF28, IMX_NPU, TC2, LITERT], ids=lambda p: p.stem)
def test_the_same_log_with_its_tabs_turned_into_spaces_reads_the_same(log):
    """As a log copied from a web page or terminal arrives (node types like "Add (ND, QU8)" hold spaces)."""
    text = log.read_text(encoding="utf-8")
    assert parse_op_profile(text.replace("\t", "  ")) == parse_op_profile(text)


def test_a_log_prefix_before_the_tabs_is_ignored():
    lines = TF28.read_text(encoding="utf-8").splitlines()
    prefixed = "\n".join(f"I0101 12:00:00.000 stat_summarizer.cc:85] {line}" for line in lines)
    assert parse_op_profile(prefixed) == _read(TF28)


def test_tensorflow_core_layout_is_refused_in_one_line_naming_its_header(tmp_path, capsys):
    with pytest.raises(HarnessError) as err:
        _read(TF_CORE)
    message = str(err.value)
    assert "\n" not in message
    assert "unknown benchmark_model table layout" in message
    assert "[node type] [start] [first] [avg ms] [%] [cdf%] [mem KB] [Name]" in message
    assert "known layouts:" in message
    assert main(["store", "import", str(tmp_path / "s.sqlite"), str(TF_CORE)]) == 2
    err_text = capsys.readouterr().err
    assert "Traceback" not in err_text and err_text.count("\n") == 1
    assert "[mem KB] [Name]" in err_text


def test_an_unknown_column_in_a_real_log_is_refused_naming_it():
    """Mutation of a real log (not a quote): one header's "[cdf%]" renamed "[foo]"."""
    text = TF28.read_text(encoding="utf-8").replace("[cdf%]", "[foo]", 1)
    with pytest.raises(HarnessError, match=r"unknown benchmark_model table layout.*\[%\] \[foo\] \[mem KB\]"):
        parse_op_profile(text)


def test_store_import_of_a_real_log_keeps_the_board_as_host(tmp_path, capsys):
    store = tmp_path / "runs.sqlite"
    assert main(["store", "import", str(store), str(TF28), "--host", "qemuriscv64"]) == 0
    assert "1 new of 1 records" in capsys.readouterr().out
    with RecordStore(store, create=False) as s:
        (record,) = s.records(kind="op_profile")
    assert record["host"]["fingerprint"] == "imported:qemuriscv64"
    assert record["model"]["name"] == "mobilenet_v1_1.0_224.tflite" and record["source"]["tool"] == "benchmark_model"
    run = record["profiles"][1]
    assert run["ops"][0]["node_type"] == "CONV_2D" and run["ops"][0]["start_ms"] == 0.066
    assert record["memory"]["overall_mb"] == 46.0859
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
    rec.write_text(json.dumps({"note": "= Run Order = / = Summary by node type ="}))
    assert not looks_like_op_profile(rec)
    assert all(looks_like_op_profile(log) for log in (*REAL_LOGS, TF_CORE))

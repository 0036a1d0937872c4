"""`harness bench`: the record it writes, the board path's imports, and like-for-like comparison."""

from __future__ import annotations

import json

import pytest
from board import run_board_command

from harness.cli import main
from harness.records.schema import SCHEMA_VERSION

QUICK = ["--min-count", "4", "--min-duration", "0", "--e2e-min-count", "3", "--e2e-min-duration", "0",
         "--warmup", "2"]


@pytest.fixture(scope="module")
def int8_record(mirror, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "int8.json"
    assert main(["bench", "mb3-centernet-int8", "--mirror", str(mirror), "--threads", "1", *QUICK,
                 "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_bench_record_has_phases_percentiles_and_raw_samples(int8_record):
    r = int8_record
    assert r["schema_version"] == SCHEMA_VERSION and r["kind"] == "bench"
    ph = r["phases"]
    assert ph["load_s"] > 0 and ph["first_inference_s"] > 0
    assert len(ph["warmup"]["samples_s"]) == 2
    for phase in ("model_only", "end_to_end"):
        samples, stats = ph[phase]["samples_s"], ph[phase]["stats"]
        assert stats["count"] == len(samples) >= 3
        assert stats["min_s"] == min(samples) and stats["max_s"] == max(samples)
        assert stats["min_s"] <= stats["p50_s"] <= stats["p90_s"] <= stats["p99_s"] <= stats["max_s"]
        for key in ("mean_s", "std_s", "throughput_per_s"):
            assert key in stats
    assert r["input"]["kind"] == "images" and r["input"]["dir"].endswith("val2017_unlabeled")
    assert r["peak_rss_bytes"] > 10 * 2**20


def test_bench_records_settings_and_host(int8_record):
    s = int8_record["settings"]
    assert s["threads"] == 1 and s["runtime"] == "ai-edge-litert" and s["delegate"] is None
    assert s["model_sha256"] == "6359d780a5c37afeb9bcb704c0299798d072d0f6d61a132b735b3ee7d29d00ff"
    assert s["affinity"]
    host = int8_record["host"]
    for key in ("cpu_model", "cores", "memory_bytes", "kernel", "python", "cpufreq", "fingerprint"):
        assert key in host
    assert int8_record["backend"]["input"]["dtype"] == "int8"


def test_random_input_is_labelled(mirror, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", "mb3-centernet-f32", "--mirror", str(mirror), "--random", *QUICK, "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["input"]["kind"] == "random"
    assert "random" in rec["phases"]["end_to_end"]["what"]
    assert "input: random" in capsys.readouterr().out


def test_board_path_imports_no_tensorflow_pandas_or_matplotlib(mirror):
    """`harness bench` on a .tflite runs in a process that never imports the heavy packages."""
    run = run_board_command(["bench", "mb3-centernet-int8", "--mirror", mirror, *QUICK])
    assert (run.rc, run.heavy) == (0, [])
    assert "time from process start to first inference:" in run.stdout


def _with_fingerprint(record: dict, fingerprint: str, cpu: str) -> dict:
    r = json.loads(json.dumps(record))
    r["host"]["fingerprint"], r["host"]["cpu_model"] = fingerprint, cpu
    return r


def test_compare_refuses_records_from_different_hosts(int8_record, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_with_fingerprint(int8_record, "aaaa", "x86 runner")))
    b.write_text(json.dumps(_with_fingerprint(int8_record, "bbbb", "Cortex-A53")))
    assert main(["compare", "latency", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error: refused") and "different hosts" in err[0]


def test_compare_accepts_the_same_fingerprint(int8_record, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(int8_record))
    b.write_text(json.dumps(int8_record))
    assert main(["compare", "latency", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "like for like" in out and "1.000" in out

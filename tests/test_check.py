"""`harness check`: each gate passes and fails where it should; exit 0 pass, 1 gate failed, 2 bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_records import bench_record, eval_record

from harness.analyse.check import mann_whitney_greater, run_gates
from harness.cli import main
from harness.errors import HarnessError


def _write(tmp_path, records, name="records.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return str(path)


@pytest.mark.parametrize("seed", range(5))
def test_mann_whitney_matches_scipy(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    a = np.round(rng.gamma(5, 0.01, 40 + seed), 3)  # rounded: ties, as real timer samples have
    b = np.round(rng.gamma(5, 0.0105, 30), 3)
    want = stats.mannwhitneyu(a, b, alternative="greater", method="asymptotic", use_continuity=True).pvalue
    assert mann_whitney_greater(a, b) == pytest.approx(want, rel=1e-9)


def test_mann_whitney_separated_samples_are_significant_and_equal_ones_are_not():
    assert mann_whitney_greater(np.arange(20) + 100.0, np.arange(20)) < 1e-6
    assert mann_whitney_greater(np.arange(20.0), np.arange(20.0)) > 0.4


# --- accuracy against a reference -------------------------------------------------------------------

def test_baseline_gate_passes_within_tolerance_of_the_expected_ap(tmp_path, capsys):
    f = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.2850)])
    assert main(["check", f, "--ap-tolerance", "0.5", "--expect", "mb3-centernet-f32=28.3"]) == 0
    assert "PASS [baseline] mb3-centernet-f32: AP 28.50 vs expected 28.30" in capsys.readouterr().out


def test_baseline_gate_fails_outside_tolerance_and_names_the_model(tmp_path, capsys):
    f = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.2700)])
    assert main(["check", f, "--ap-tolerance", "0.5", "--expect", "mb3-centernet-f32=28.5"]) == 1
    out = capsys.readouterr().out
    assert "FAIL [baseline] mb3-centernet-f32: AP 27.00 vs expected 28.50 (|diff| 1.50" in out


def test_baseline_gate_uses_the_published_number_only_for_like_for_like_runs(tmp_path):
    like = eval_record("centernet-mobilenetv2-fpn-512-int8", 0.171, images=5000, like_for_like=True, protocol="nxp")
    subset = eval_record("mb3-centernet-f32", 0.285)  # 159 images vs 25.1 on 5000: not comparable
    found = run_gates([like, subset], tolerance=0.5)
    assert [(x.subject, x.passed) for x in found] == [("centernet-mobilenetv2-fpn-512-int8", True)]
    assert not run_gates([eval_record("centernet-mobilenetv2-fpn-512-int8", 0.160, images=5000,
                                      like_for_like=True, protocol="nxp")], tolerance=0.5)[0].passed
    assert not run_gates([subset], tolerance=0.5, allow_unlike=True)[0].passed  # 28.5 vs 25.1


def test_an_expected_model_without_a_record_fails(tmp_path):
    found = run_gates([eval_record("mb3-centernet-f32", 0.285)], tolerance=1,
                      expected={"mb3-centernet-f32": 28.5, "mb3-centernet-16x8": 27.8})
    assert {(x.subject, x.passed) for x in found} == {("mb3-centernet-f32", True), ("mb3-centernet-16x8", False)}


# --- quantized vs float sibling ---------------------------------------------------------------------

def test_quant_drop_gate_fails_int8_and_passes_16x8(tmp_path, capsys):
    f = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.2850), eval_record("mb3-centernet-int8", 0.0036),
                          eval_record("mb3-centernet-16x8", 0.2779)])
    assert main(["check", f, "--max-quant-drop", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAIL [quant-drop] mb3-centernet-int8: AP 0.36 vs float mb3-centernet-f32 28.50, drop 28.14" in out
    assert "PASS [quant-drop] mb3-centernet-16x8: AP 27.79 vs float mb3-centernet-f32 28.50, drop 0.71" in out
    g = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.2850), eval_record("mb3-centernet-16x8", 0.2779)],
               "ok.json")
    assert main(["check", g, "--max-quant-drop", "2"]) == 0


def test_quant_drop_pairs_only_records_on_the_same_images():
    f = eval_record("mb3-centernet-f32", 0.285, ids_sha="subset-a")
    q = eval_record("mb3-centernet-int8", 0.0, ids_sha="subset-b")
    with pytest.raises(HarnessError, match="nothing to check"):
        run_gates([f, q], max_quant_drop=2)


def test_quant_drop_prefers_the_float_sibling_on_the_same_runtime():
    tflite = eval_record("mb3-centernet-f32", 0.285)
    hub = eval_record("mb3-centernet-hub", 0.250, runtime="tensorflow", created="2099-01-01")  # newer
    q = eval_record("mb3-centernet-16x8", 0.278)
    (found,) = run_gates([tflite, hub, q], max_quant_drop=2)
    assert "vs float mb3-centernet-f32" in found.message and found.passed


# --- latency against the previous run on the same host -----------------------------------------------

def _samples(median: float, n: int = 60, noise: float = 0.05, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1 + noise * rng.standard_normal(n)))


def test_latency_gate_fails_a_real_significant_slowdown(tmp_path, capsys):
    old = bench_record("mb3-centernet-int8", _samples(0.100, seed=1), created="2026-11-01")
    new = bench_record("mb3-centernet-int8", _samples(0.130, seed=2), created="2026-11-02")
    f = _write(tmp_path, [old, new])
    assert main(["check", f, "--max-slowdown", "1.1"]) == 1
    assert "slower" in capsys.readouterr().out


def test_latency_gate_passes_a_noisy_run_whose_median_moved_but_not_significantly():
    old = bench_record("mb3-centernet-int8", [0.10, 0.20, 0.10, 0.20, 0.10], created="2026-11-01")
    new = bench_record("mb3-centernet-int8", [0.20, 0.12, 0.20, 0.11, 0.12], created="2026-11-02")
    (found,) = run_gates([old, new], max_slowdown=1.1)
    assert found.passed and "within noise" in found.message


def test_latency_gate_passes_a_significant_but_small_change():
    old = bench_record("mb3-centernet-int8", _samples(0.100, noise=0.001, seed=1), created="2026-11-01")
    new = bench_record("mb3-centernet-int8", _samples(0.102, noise=0.001, seed=2), created="2026-11-02")
    (found,) = run_gates([old, new], max_slowdown=1.1)
    assert found.passed


def test_latency_gate_compares_only_records_of_the_same_host_fingerprint():
    a = bench_record("mb3-centernet-int8", _samples(0.100), "imx8mp", created="2026-11-01")
    b = bench_record("mb3-centernet-int8", _samples(0.500), "imx93", created="2026-11-02")  # a slower board
    with pytest.raises(HarnessError, match="nothing to check"):
        run_gates([a, b], max_slowdown=1.1)


def test_latency_gate_with_a_history_of_one_compares_the_newest_with_the_one_before_it():
    runs = [bench_record("mb3-centernet-int8", _samples(m, seed=i), created=f"2026-11-0{i + 1}")
            for i, m in enumerate((0.20, 0.10, 0.101))]  # an old slow run no longer matters
    (found,) = run_gates(runs, max_slowdown=1.1, history=1)
    assert found.passed and "ratio 1.0" in found.message


# --- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    ([], "name a gate"),
    (["--max-quant-drop", "-1"], "--max-quant-drop must be >= 0"),
    (["--max-slowdown", "0.9"], "--max-slowdown is a ratio >= 1"),
    (["--max-slowdown", "1.1", "--alpha", "2"], "--alpha must be between 0 and 1"),
    (["--expect", "f32=28"], "--expect needs --ap-tolerance"),
    (["--ap-tolerance", "1", "--expect", "f32"], "--expect wants MODEL=AP"),
    (["--max-slowdown", "1.1"], "--max-slowdown: nothing to check"),
])
def test_bad_gate_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    f = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.285)])
    assert main(["check", f, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error:") and message in err and err.count("\n") == 1


def test_check_without_records_is_bad_input(tmp_path, capsys):
    assert main(["check", "--max-quant-drop", "2"]) == 2
    assert "no run records" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.json"), "--max-quant-drop", "2"]) == 2


def test_check_reads_a_store(tmp_path):
    from harness.records.store import RecordStore

    with RecordStore(tmp_path / "s.sqlite") as s:
        s.add([eval_record("mb3-centernet-f32", 0.2850), eval_record("mb3-centernet-int8", 0.0036)])
    assert main(["check", "--store", str(tmp_path / "s.sqlite"), "--max-quant-drop", "2"]) == 1


def test_skip_missing_lets_a_first_run_pass_with_a_note(tmp_path, capsys):
    f = _write(tmp_path, [bench_record("mb3-centernet-int8", _samples(0.1))])
    assert main(["check", f, "--max-slowdown", "1.1", "--skip-missing"]) == 0
    assert "skipped: nothing to check" in capsys.readouterr().out


def test_a_record_in_both_the_store_and_a_file_counts_once(tmp_path, capsys):
    from harness.records.store import RecordStore

    old = bench_record("mb3-centernet-int8", _samples(0.100, seed=1), created="2026-11-01")
    new = bench_record("mb3-centernet-int8", _samples(0.101, seed=2), created="2026-11-02")
    with RecordStore(tmp_path / "s.sqlite") as s:
        s.add([old, new])
    f = _write(tmp_path, [new])  # were it counted twice, the newest would be compared with itself
    assert main(["check", "--store", str(tmp_path / "s.sqlite"), f, "--max-slowdown", "1.1"]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out

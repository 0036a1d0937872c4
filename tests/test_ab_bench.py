"""Interleaved A/B bench: the block loop, the paired block-bootstrap interval, the ab_bench record, its gate.

Expected intervals and medians are worked out by hand in the comments (small fixed series whose bootstrap
distribution can be enumerated), not taken from the code's output.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from harness.analyse.check import run_gates
from harness.cli import main
from harness.common.fileio import write_json_atomic
from harness.errors import HarnessError
from harness.measure.ab import ABSettings, Side, ab_body, ratio_interval, run_blocks, verdict, weighted_medians
from harness.records.reader import load_records, read_record
from harness.records.schema import new_record

# --- the weighted median a resample takes -------------------------------------------------------------


def test_weighted_medians_are_the_medians_of_the_blocks_repeated_as_drawn():
    blocks = [[1, 2], [3, 4], [10, 20]]
    weights = np.array([[1, 1, 1],   # 1 2 3 4 10 20        -> (3 + 4) / 2
                        [2, 0, 1],   # 1 1 2 2 10 20        -> (2 + 2) / 2
                        [0, 1, 1],   # 3 4 10 20            -> (4 + 10) / 2
                        [0, 0, 3]])  # 10 10 10 20 20 20    -> (10 + 20) / 2
    assert weighted_medians(blocks, weights).tolist() == [3.5, 2.0, 7.0, 15.0]


# --- the interval ---------------------------------------------------------------------------------------

def test_a_drift_both_sides_share_cancels_in_the_paired_ratio():
    # The host slows down block by block (1 ms, 2 ms, 3 ms, ...); the candidate is always 1.1x the baseline in
    # the same block. Every resample scales both pooled medians alike, so every replicate is exactly 1.1.
    base = [[k, k] for k in (1.0, 2.0, 3.0, 4.0, 5.0)]
    cand = [[1.1 * x for x in b] for b in base]
    r = ratio_interval(cand, base, resamples=500)
    assert r["ratio"] == pytest.approx(1.1) and r["lo"] == pytest.approx(1.1) and r["hi"] == pytest.approx(1.1)
    assert r["per_block_ratio"] == pytest.approx([1.1] * 5) and r["verdict"] == "slower"


def test_interval_of_a_three_block_series_is_its_enumerated_bootstrap_distribution():
    # Candidate blocks 1, 2, 3 ms against a flat 1 ms baseline. A resample draws 3 blocks with replacement:
    # its median is 1 with probability 7/27 (two or three 1s), 3 with 7/27, else 2. The 2.5% and 97.5%
    # quantiles of that distribution are 1 and 3: the 95% interval is [1, 3] around the point 2.
    r = ratio_interval([[1.0], [2.0], [3.0]], [[1.0], [1.0], [1.0]], level=0.95, resamples=2000)
    assert (r["ratio"], r["lo"], r["hi"]) == (2.0, 1.0, 3.0)
    assert r["width"] == 2.0 and r["verdict"] == "no difference detected"


def test_the_interval_is_the_same_for_the_same_seed():
    rng = np.random.default_rng(3)
    a = [list(0.05 + 0.01 * rng.random(5)) for _ in range(10)]
    b = [list(0.05 + 0.01 * rng.random(5)) for _ in range(10)]
    assert ratio_interval(a, b, seed=7) == ratio_interval(a, b, seed=7)


@pytest.mark.parametrize(("lo", "hi", "want"), [
    (1.01, 1.2, "slower"), (0.8, 0.99, "faster"), (0.95, 1.05, "no difference detected"),
    (1.0, 1.1, "no difference detected"),
])
def test_verdict_against_one(lo, hi, want):
    assert verdict(lo, hi) == want


def test_settings_refuse_too_few_blocks():
    with pytest.raises(HarnessError, match="--blocks must be >= 4"):
        ABSettings(blocks=3).check()
    with pytest.raises(HarnessError, match="--confidence"):
        ABSettings(level=1.5).check()


# --- the block loop ---------------------------------------------------------------------------------

class FakeHost:
    """A clock that only moves when a side runs: side A costs 1 s, side B 2 s (and the log says who ran)."""

    def __init__(self) -> None:
        self.now, self.log = 0.0, []

    def clock(self) -> float:
        return self.now

    def side(self, role: str, cost: float) -> Side:
        def invoke() -> None:
            self.log.append(role)
            self.now += cost

        return Side(role, [invoke], {"label": f"model-{role}", "settings": {"threads": 1, "delegate": None,
                                                                         "runtime": "fake"}})


def test_blocks_alternate_and_the_side_that_goes_first_rotates():
    host = FakeHost()
    sides = [host.side("baseline", 1.0), host.side("candidate", 2.0)]
    blocks = run_blocks(sides, ABSettings(blocks=4, block_size=2, warmup=1), clock=host.clock)
    b, c = "baseline", "candidate"
    assert host.log == [b, c,  # warm-up
                        b, b, c, c, c, c, b, b, b, b, c, c, c, c, b, b]
    assert blocks == {b: [[1.0, 1.0]] * 4, c: [[2.0, 2.0]] * 4}


def test_the_instances_of_a_side_take_turns_every_round_of_all_sides():
    host = FakeHost()
    runs = []
    side = Side("baseline", [lambda: runs.append(0), lambda: runs.append(1)], {})
    other = host.side("candidate", 1.0)
    run_blocks([side, other], ABSettings(blocks=8, block_size=1, warmup=0), clock=host.clock)
    assert runs == [0, 0, 1, 1, 0, 0, 1, 1]  # blocks 0-1: instance 0, 2-3: instance 1, ...


def _ab_record(host: str | None = None) -> dict:
    fake = FakeHost()
    sides = [fake.side("baseline", 0.040), fake.side("candidate", 0.050), fake.side("reference", 0.002)]
    settings = ABSettings(blocks=4, block_size=3, warmup=0, resamples=200)
    rec = new_record("ab_bench", input={"kind": "random"}, **ab_body(sides, run_blocks(sides, settings, fake.clock),
                                                                     settings))
    if host:
        rec["host"]["fingerprint"] = host
    return rec


def test_ab_record_keeps_both_series_the_blocks_and_every_ratio(tmp_path):
    rec = _ab_record()
    assert set(rec["sides"]) == {"baseline", "candidate", "reference"}
    cand = rec["sides"]["candidate"]
    assert len(cand["blocks_s"]) == 4 and len(cand["samples_s"]) == 12 and cand["stats"]["count"] == 12
    assert set(rec["ratios"]) == {"candidate/baseline", "candidate/reference", "baseline/reference"}
    assert rec["ratios"]["candidate/baseline"]["ratio"] == pytest.approx(50 / 40)  # 50 ms / 40 ms
    assert rec["ratios"]["candidate/reference"]["ratio"] == pytest.approx(25.0)  # 50 ms / 2 ms
    path = tmp_path / "ab.json"
    write_json_atomic(path, rec, indent=1)
    assert read_record(path, "ab_bench") == json.loads(json.dumps(rec))
    with pytest.raises(HarnessError, match="is not a bench run record"):
        read_record(path, "bench")


def test_an_ab_record_without_its_sides_is_refused(tmp_path):
    rec = _ab_record()
    del rec["sides"]
    (tmp_path / "bad.json").write_text(json.dumps(rec))
    with pytest.raises(HarnessError, match="ab_bench record lacks sides"):
        load_records([tmp_path / "bad.json"])


def test_ab_record_goes_through_the_store(tmp_path):
    rec = _ab_record()
    (tmp_path / "ab.json").write_text(json.dumps(rec))
    assert main(["store", "import", str(tmp_path / "s.sqlite"), str(tmp_path / "ab.json")]) == 0
    (back,) = load_records([], tmp_path / "s.sqlite")
    assert back["ratios"] == rec["ratios"]


# --- the gate on the lower bound --------------------------------------------------------------------

def _with_ratio(rec: dict, ratio: float, lo: float, hi: float, created: str = "") -> dict:
    rec = copy.deepcopy(rec)
    rec["ratios"]["candidate/baseline"].update(ratio=ratio, lo=lo, hi=hi)
    if created:
        rec["created"] = created
    return rec


@pytest.mark.parametrize(("ratio", "lo", "hi", "exit_code"), [
    (1.08, 1.02, 1.15, 0),  # the point is above 1.05, but 1.05 is inside the interval: not shown to be slower
    (1.10, 1.06, 1.14, 1),  # the whole interval is above 1.05: slower
    (1.05, 1.05, 1.07, 0),  # a lower bound on the limit is not above it
    (0.90, 0.85, 0.95, 0),
])
def test_max_slowdown_on_an_ab_record_fails_only_when_the_lower_bound_is_above_it(tmp_path, capsys, ratio, lo, hi,
                                                                                      exit_code):
    f = tmp_path / "ab.json"
    f.write_text(json.dumps(_with_ratio(_ab_record(), ratio, lo, hi)))
    assert main(["check", str(f), "--max-slowdown", "1.05"]) == exit_code
    out = capsys.readouterr().out
    assert f"p50 ratio {ratio:.3f} [{lo:.3f}, {hi:.3f}]" in out
    assert ("FAIL [ab-latency]" in out) == (exit_code == 1)


def test_the_ab_gate_reads_the_newest_record_of_each_pair_on_each_host():
    base = _ab_record("host-a")
    old = _with_ratio(base, 1.5, 1.4, 1.6, created="2026-11-01")
    new = _with_ratio(base, 1.0, 0.98, 1.02, created="2026-11-02")
    other = _with_ratio(_ab_record("host-b"), 1.5, 1.4, 1.6)
    found = run_gates([old, new, other], max_slowdown=1.05)
    assert sorted((f.subject.split("@")[1], f.passed) for f in found) == [("host-a", True), ("host-b", False)]


def test_a_reference_only_record_gives_the_slowdown_gate_nothing_to_check():
    rec = _ab_record()
    del rec["ratios"]["candidate/baseline"], rec["sides"]["baseline"]
    with pytest.raises(HarnessError, match="--max-slowdown: nothing to check"):
        run_gates([rec], max_slowdown=1.05)


# --- on the real model ------------------------------------------------------------------------------

def test_bench_one_model_under_two_thread_counts_with_the_reference(mirror, tmp_path, capsys):
    out = tmp_path / "ab.json"
    assert main(["bench", "mb3-centernet-f32", "--mirror", str(mirror), "--threads", "1", "--baseline-threads", "2",
                 "--reference", "--blocks", "4", "--block-size", "1", "--warmup", "1", "--instances", "2",
                 "--json", str(out)]) == 0
    rec = read_record(out, "ab_bench")
    sides = rec["sides"]
    assert sides["candidate"]["label"] == sides["baseline"]["label"] == "mb3-centernet-f32"
    assert (sides["candidate"]["settings"]["threads"], sides["baseline"]["settings"]["threads"]) == (1, 2)
    assert sides["candidate"]["instances"] == 2 and len(sides["baseline"]["load_s"]) == 2
    assert sides["reference"]["reference"]["model_sha256"] == sides["reference"]["reference"]["pinned_sha256"]
    r = rec["ratios"]["candidate/reference"]
    assert r["lo"] <= r["ratio"] <= r["hi"] and r["blocks"] == 4
    assert "p50 candidate/baseline:" in capsys.readouterr().out


def test_bench_refuses_too_few_blocks(mirror, capsys):
    assert main(["bench", "mb3-centernet-f32", "--mirror", str(mirror), "--reference", "--blocks", "2"]) == 2
    assert "--blocks must be >= 4" in capsys.readouterr().err


# --- the reference model ----------------------------------------------------------------------------

def test_the_shipped_reference_model_is_the_pinned_one():
    from harness.common.identity import model_sha256
    from harness.models.reference import PATH, SHA256

    assert model_sha256(PATH) == SHA256


@pytest.mark.slow
def test_the_reference_model_is_rebuilt_from_its_seed(tmp_path):
    """Rebuilt by TensorFlow from the seeded weights, it computes what the shipped file computes."""
    pytest.importorskip("tensorflow")
    from harness.models.backends.tflite_runtimes import select_runtime
    from harness.models.reference import PATH
    from harness.models.reference.build import build_reference_tflite

    rebuilt = tmp_path / "rebuilt.tflite"
    rebuilt.write_bytes(build_reference_tflite())
    outputs = []
    for path in (PATH, rebuilt):
        it = select_runtime(None).interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        it.set_tensor(inp["index"], np.random.default_rng(1).uniform(0, 255, inp["shape"]).astype(np.float32))
        it.invoke()
        outputs.append(it.get_tensor(out["index"]).copy())
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)

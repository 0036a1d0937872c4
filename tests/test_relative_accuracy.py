"""`harness check --min-relative-accuracy`: MLPerf's "99% of FP32" rule, quantized AP >= RATIO x float AP.
(Eval records keep AP as a fraction, search records in points; the ratio is the same either way.)

The boundary cases are computed by hand: 28.215 is exactly 99% of 28.50 and passes, 28.21 (98.98%) fails;
9.999 is exactly 99% of 10.1 (a pair where floating point puts 100 x 0.09999 below 0.99 x 10.1).
"""

from __future__ import annotations

import json
import re

import pytest
from fake_records import eval_record, quant_search_record, search_candidate
from test_intervals import pair_dir  # noqa: F401 (fixture: f32 and int8 detections, drop 2.26 points)

from harness.analyse.check import gate_relative_accuracy, run_gates
from harness.cli import main
from harness.errors import HarnessError


def _write(tmp_path, records, name="records.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return str(path)


@pytest.mark.parametrize("float_ap, quant_ap, ratio, passed", [
    (0.2850, 0.28215, 0.99, True),   # exactly 99%
    (0.2850, 0.2821, 0.99, False),   # 28.21 / 28.50 = 0.98982
    (0.101, 0.09999, 0.99, True),    # exactly 99%, below it by float rounding
    (0.101, 0.09998, 0.99, False),   # 9.998 / 10.1 = 0.98990
    (0.2850, 0.2779, 0.99, False),   # 16x8: 27.79 / 28.50 = 0.97509
    (0.2850, 0.2779, 0.975, True),
    (0.2850, 0.2850, 1.0, True),     # a ratio of 1: no loss at all allowed
    (0.2850, 0.3000, 0.99, True),    # a quantized model better than float passes
])
def test_the_boundary_by_hand(float_ap, quant_ap, ratio, passed):
    (found,) = gate_relative_accuracy([eval_record("mb3-centernet-f32", float_ap),
                                       eval_record("mb3-centernet-int8", quant_ap)], ratio)
    assert found.passed is passed and found.gate == "relative-accuracy" and found.subject == "mb3-centernet-int8"


def test_cli_prints_the_ratio_and_exits_by_it(tmp_path, capsys):
    f = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.2850), eval_record("mb3-centernet-int8", 0.0036),
                          eval_record("mb3-centernet-16x8", 0.28215)])
    assert main(["check", f, "--min-relative-accuracy", "0.99"]) == 1
    out = capsys.readouterr().out
    assert ("FAIL [relative-accuracy] mb3-centernet-int8: AP 0.360 vs float mb3-centernet-f32 28.500, ratio 0.0126 "
            "(min 0.99: AP >= 28.215)") in out
    assert ("PASS [relative-accuracy] mb3-centernet-16x8: AP 28.215 vs float mb3-centernet-f32 28.500, "
            "ratio 0.9900") in out
    g = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.2850), eval_record("mb3-centernet-16x8", 0.28215)],
               "ok.json")
    assert main(["check", g, "--min-relative-accuracy", "0.99"]) == 0


def test_pairs_as_the_quant_drop_gate_does():
    """Same images only; among float siblings the one on the same runtime, even when another is newer."""
    with pytest.raises(HarnessError, match="--min-relative-accuracy: nothing to check"):
        run_gates([eval_record("mb3-centernet-f32", 0.285, ids_sha="a"),
                   eval_record("mb3-centernet-int8", 0.284, ids_sha="b")], min_relative_accuracy=0.99)
    tflite = eval_record("mb3-centernet-f32", 0.285)
    hub = eval_record("mb3-centernet-hub", 0.250, runtime="tensorflow", created="2099-01-01")
    (found,) = run_gates([tflite, hub, eval_record("mb3-centernet-16x8", 0.2800)], min_relative_accuracy=0.99)
    assert not found.passed and "vs float mb3-centernet-f32 28.500, ratio 0.9825" in found.message  # not 1.12 vs hub


def _search(chosen, closest=None, **kw):
    c = [search_candidate("int8", 0.36, 28.50, 63.0, 2_552_784),
         search_candidate("int16x8", 27.79, 28.50, 1500.0, 2_740_056)]
    return quant_search_record(c, chosen=chosen, closest=closest, **kw)


def test_a_search_is_judged_by_its_chosen_plan(tmp_path, capsys):
    f = _write(tmp_path, [_search("int16x8")])
    assert main(["check", f, "--min-relative-accuracy", "0.99"]) == 1
    out = capsys.readouterr().out
    assert ("FAIL [relative-accuracy] mb3-centernet/raw search for cpu: chosen plan int16x8 AP 27.790 vs float "
            "28.500, ratio 0.9751") in out
    assert main(["check", f, "--min-relative-accuracy", "0.975"]) == 0


def test_a_search_without_a_chosen_plan_is_judged_by_the_closest():
    (found,) = run_gates([_search(None, closest="int16x8", max_drop=0.5)], min_relative_accuracy=0.97)
    assert found.passed and "closest (none met the search's budget) plan int16x8" in found.message
    (found,) = run_gates([_search(None)], min_relative_accuracy=0.97)
    assert not found.passed and "no measured plan to check" in found.message


def test_the_newest_search_counts():
    old = _search("int8", created="2026-11-01T00:00:00+00:00")
    new = _search("int16x8", created="2026-11-02T00:00:00+00:00")
    (found,) = run_gates([new, old], min_relative_accuracy=0.975)
    assert found.passed and "int16x8" in found.message


@pytest.mark.parametrize("value", ["0", "-0.5", "1.01", "99"])
def test_a_ratio_outside_0_1_is_bad_input(tmp_path, capsys, value):
    f = _write(tmp_path, [eval_record("mb3-centernet-f32", 0.285), eval_record("mb3-centernet-int8", 0.28)])
    assert main(["check", f, "--min-relative-accuracy", value]) == 2
    err = capsys.readouterr().err
    assert "--min-relative-accuracy is a fraction of the float model's AP in (0, 1]" in err and err.count("\n") == 1


# --- with --confidence: a drop limit of (1 - RATIO) x float AP on the paired interval ----------------------


def _float_ap(pair_dir) -> float:  # noqa: F811
    return 100 * json.loads((pair_dir / "eval_f32.json").read_text())["results"]["stats"]["AP"]


def _check(capsys, *args):
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_confidence_turns_the_ratio_into_the_paired_drop_gate(pair_dir, capsys):  # noqa: F811
    """test_intervals' pair drops 2.26 points, 95% paired interval about [1.2, 2.9]: limits of 0.5, 4 and
    2.5 points fail, pass and are inconclusive there; here they are asked for as ratios of the float AP."""
    files = [str(pair_dir / "eval_f32.json"), str(pair_dir / "eval_int8.json")]
    fap = _float_ap(pair_dir)
    for limit, code_want, word in ((0.5, 1, "FAIL"), (4.0, 0, "PASS"), (2.5, 0, "WARN")):
        ratio = f"{1 - limit / fap:.6f}"
        code, out = _check(capsys, *files, "--min-relative-accuracy", ratio, "--confidence", "0.95")
        assert code == code_want and f"{word} [relative-accuracy]" in out, out
        assert re.search(rf"allowed {limit:.3f} = [\d.]+% of float AP, for a ratio >= {ratio[:6]}", out), out
        if word != "WARN":
            assert f"{'exceeds' if word == 'FAIL' else 'is below'} {limit:.3f} with 95% confidence" in out, out
        # the interval is the quant-drop gate's own
        _, drop_out = _check(capsys, *files, "--max-quant-drop", f"{limit}", "--confidence", "0.95")
        bounds = re.compile(r"drop \d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]")
        assert bounds.search(out).group(0) == bounds.search(drop_out).group(0)
    code, out = _check(capsys, *files, "--min-relative-accuracy", f"{1 - 2.5 / fap:.6f}", "--confidence", "0.95",
                       "--inconclusive", "fail")
    assert code == 1 and "inconclusive" in out


def test_confidence_on_a_search_record_says_it_used_point_values(tmp_path, capsys):
    f = _write(tmp_path, [_search("int16x8")])
    code, out = _check(capsys, f, "--min-relative-accuracy", "0.975", "--confidence", "0.95")
    assert code == 0 and "(point values: a search record keeps no detections to resample)" in out

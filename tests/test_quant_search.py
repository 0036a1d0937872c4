"""The precision search: its logic on synthetic trials, the NPU cost model on hand-counted graphs, calibration
hygiene, and plan replay byte for byte on a tiny SavedModel built here. The real search on the mirror's
mb3-centernet is slow (tens of minutes) and marked so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness.analyse.precision.search import Budget, Candidate, best, closest, search
from harness.analyse.precision.space import Space, proposer, ranked_prefixes
from harness.errors import HarnessError
from harness.quantize.cost import NpuTarget, OpInfo, Price, npu_price
from harness.quantize.plan import PLAN_FORMAT, Plan, read_plan, version_drift

SOURCE = {"path": "/nowhere/saved_model", "sha256": "0" * 64}
CAL = {"dir": "/nowhere/cal", "files": ["a.jpg", "b.jpg"], "resize": "bilinear", "size": [8, 8], "dtype": "float32",
       "draw": "sorted", "seed": None}


class FakeTrials:
    """Trials whose AP, cost and eligibility are given per plan name; counts what the search asked for."""

    def __init__(self, tmp: Path, table: dict[str, tuple], screen_ap: dict[str, float] | None = None) -> None:
        self.tmp, self.table, self.screen_ap = tmp, table, screen_ap or {}
        self.built: list[str] = []
        self.scored: list[tuple[str, int | None]] = []

    def build(self, plan: Plan) -> Path:
        if self.table[plan.name][0] is None:
            raise HarnessError(f"{plan.name} does not convert")
        self.built.append(plan.name)
        path = self.tmp / f"{plan.key()}.tflite"
        path.write_bytes(plan.name.encode())
        return path

    def _name(self, path: Path) -> str:
        return path.read_bytes().decode()

    def latency(self, path: Path) -> float:
        return 10.0

    def price(self, plan: Plan, path: Path, p50_ms: float | None) -> Price:
        _, cost, eligible = self.table[plan.name]
        return Price(cost, eligible, "" if eligible else "too many CPU ops")

    def ap(self, path: Path, images: int | None) -> float:
        name = self._name(path)
        self.scored.append((name, images))
        return self.screen_ap.get(name, self.table[name][0]) if images else self.table[name][0]


def plans(*names: str, refs: dict[str, str] | None = None):
    refs = refs or {}

    def propose(done):
        for n in names:
            yield Plan(n, "int8", SOURCE, CAL), refs.get(n)
    return propose


def test_the_cheapest_plan_within_budget_wins_and_costlier_ones_are_not_scored(tmp_path):
    # float AP 28.5, budget 2: "a" loses 10 (over), "b" loses 1.5 at cost 5 (within), "c" costs 7: cannot win.
    t = FakeTrials(tmp_path, {"a": (18.5, 1.0, True), "b": (27.0, 5.0, True), "c": (28.4, 7.0, True)})
    done = search(plans("a", "b", "c"), t, Budget(2.0, 28.5))
    rows = {c.name: c for c in done}
    assert best(done).name == "b"
    assert rows["a"].status == "measured" and not rows["a"].meets_budget and rows["a"].delta_ap == -10.0
    assert rows["c"].status == "skipped" and "cannot win" in rows["c"].reason
    assert ("c", None) not in t.scored  # the AP of a plan that cannot win is never measured


def test_a_cheaper_plan_found_later_still_wins(tmp_path):
    t = FakeTrials(tmp_path, {"a": (28.0, 9.0, True), "b": (27.0, 3.0, True)})
    assert best(search(plans("a", "b"), t, Budget(2.0, 28.5))).name == "b"


def test_screening_stops_hopeless_plans_on_the_subset(tmp_path):
    # On the 40-image subset float scores 30; "a" scores 20 there: -10 < -(2 + 3): never scored on all images.
    t = FakeTrials(tmp_path, {"a": (19.0, 1.0, True), "b": (27.5, 2.0, True)}, screen_ap={"a": 20.0, "b": 29.0})
    done = search(plans("a", "b"), t, Budget(2.0, 28.5, 40, 30.0, 3.0))
    assert ("a", None) not in t.scored and ("a", 40) in t.scored
    assert done[0].images == 40 and "screened out" in done[0].reason
    assert done[1].meets_budget and ("b", None) in t.scored


def test_failures_and_plans_the_target_cannot_run_are_recorded_and_the_search_goes_on(tmp_path):
    t = FakeTrials(tmp_path, {"bad": (None, 1.0, True), "cpu-heavy": (28.5, 2.0, False), "ok": (28.0, 4.0, True)})
    done = search(plans("bad", "cpu-heavy", "ok"), t, Budget(2.0, 28.5))
    assert [c.status for c in done] == ["failed", "skipped", "measured"]
    assert "does not convert" in done[0].reason and "too many CPU ops" in done[1].reason
    assert best(done).name == "ok"


def test_a_model_the_runtime_cannot_run_is_a_failed_candidate_not_a_failed_search(tmp_path):
    class Broken(FakeTrials):
        def ap(self, path, images):
            if self._name(path) == "x":
                raise RuntimeError("Node number 0 (QUANTIZE) failed to prepare.\nmore")
            return super().ap(path, images)

    t = Broken(tmp_path, {"x": (28.0, 1.0, True), "y": (28.0, 2.0, True)})
    done = search(plans("x", "y"), t, Budget(2.0, 28.5))
    assert done[0].status == "failed" and done[0].reason == "RuntimeError: Node number 0 (QUANTIZE) failed to prepare."
    assert best(done).name == "y"


def test_references_are_scored_even_when_they_cannot_win(tmp_path):
    t = FakeTrials(tmp_path, {"f32": (28.5, 100.0, False), "i8": (1.0, 1.0, True), "x": (28.0, 2.0, True),
                              "16x8": (27.8, 50.0, True)})
    done = search(plans("f32", "i8", "x", "16x8", refs={"f32": "float32", "i8": "int8", "16x8": "int16x8"}), t,
                  Budget(2.0, 28.5))
    rows = {c.name: c for c in done}
    assert rows["f32"].ap == 28.5 and not rows["f32"].meets_budget  # the target cannot run float32
    assert rows["16x8"].status == "measured" and best(done).name == "x"


def test_a_reference_that_fails_the_screen_is_still_scored_on_all_images(tmp_path):
    t = FakeTrials(tmp_path, {"i8": (0.4, 1.0, True), "x": (0.5, 2.0, True)}, screen_ap={"i8": 1.0, "x": 1.0})
    done = search(plans("i8", "x", refs={"i8": "int8"}), t, Budget(2.0, 28.5, 40, 30.0))
    assert ("i8", None) in t.scored and done[0].images is None and done[0].delta_ap == -28.1
    assert ("x", None) not in t.scored


def test_when_none_meets_the_budget_the_closest_runnable_one_is_named(tmp_path):
    t = FakeTrials(tmp_path, {"a": (15.0, 1.0, True), "b": (17.6, 2.0, True), "f32": (28.5, 1.0, False)})
    done = search(plans("a", "b", "f32", refs={"f32": "float32"}), t, Budget(2.0, 28.5))
    assert best(done) is None and closest(done).name == "b"


def _cand(k: int, meets: bool, status: str = "measured") -> Candidate:
    return Candidate(f"k{k}", Plan(f"k{k}", "int8", SOURCE, CAL), meets_budget=meets, status=status)


@pytest.mark.parametrize(("smallest", "tried"), [
    (5, [1, 2, 4, 8, 6, 5]),  # doubled to 8 (meets), then bisected between 4 and 8
    (1, [1]),
    (8, [1, 2, 4, 8, 6, 7]),  # 8 meets, 4 does not: 6 and 7 tried and fail, so 8 is the shortest
    (None, [1, 2, 4, 8, 10]),  # none meets: up to the whole ranking
])
def test_the_ranking_is_doubled_then_bisected_to_the_shortest_prefix_that_meets(smallest, tried):
    names = [f"L{i}" for i in range(10)]
    done: list[Candidate] = []
    seen = []
    for plan, _ in ranked_prefixes(lambda: names, lambda ns: Plan(f"k{len(ns)}", "int8", SOURCE, CAL), done, 10):
        k = int(plan.name[1:])
        seen.append(k)
        done.append(_cand(k, smallest is not None and k >= smallest))
    assert seen == tried


def test_the_ranking_stops_where_more_layers_cannot_help():
    done: list[Candidate] = []
    seen = []
    for plan, _ in ranked_prefixes(lambda: ["a", "b", "c", "d"], lambda ns: Plan(f"k{len(ns)}", "int8", SOURCE, CAL),
                                   done, 10):
        seen.append(plan.name)
        done.append(_cand(len(seen), False, "skipped" if plan.name == "k2" else "measured"))
    assert seen == ["k1", "k2"]


def test_the_space_proposes_references_variants_ranked_families_then_16x8():
    space = Space(SOURCE, CAL, (("int8 calib400", CAL, "all"),), max_steps=1, a16=True)
    done: list[Candidate] = []
    names = []
    for plan, ref in proposer(space, lambda d: ["L0", "L1"])(done):
        names.append((plan.name, plan.mode, ref))
        done.append(_cand(1, False))
    assert names == [("float32", "float32", "float32"), ("int8", "int8", "int8"), ("int8 calib400", "int8", None),
                     ("int8+a16 top1", "int8+a16", None), ("int8+float top1", "int8", None),
                     ("16x8", "16x8", "int16x8")]


def test_a_negative_budget_is_refused():
    with pytest.raises(HarnessError, match="max-drop"):
        Budget(-1.0, 28.5)


# --------------------------------------------------------------------------------------------------
# The NPU cost model, hand-counted


TOY = NpuTarget("toy", "", frozenset({"CONV_2D", "ADD"}), {"int8": 1.0, "int16": 4.0}, npu_gmacs=1.0,
                cpu_gmacs=0.5, handover_ms=1.0, copy_gb_s=1.0, cpu_op_budget=1)


def test_conv_macs_are_counted_from_the_weights_shape():
    from harness.quantize.cost import _macs

    # 8x8x16 output of a 3x3 conv over 4 channels: 8*8*16*3*3*4 = 36864 MACs; depthwise 3x3: 8*8*16*9.
    assert _macs("CONV_2D", (1, 8, 8, 16), (1, 8, 8, 4), (16, 3, 3, 4)) == 36864
    assert _macs("DEPTHWISE_CONV_2D", (1, 8, 8, 16), (1, 8, 8, 16), (1, 3, 3, 16)) == 9216
    assert _macs("FULLY_CONNECTED", (1, 10), (1, 64), (10, 64)) == 640
    assert _macs("ADD", (1, 8, 8, 16), (1, 8, 8, 16), None) == 1024


def test_the_npu_figure_adds_npu_macs_cpu_macs_and_handovers():
    # conv int8 (1e6 MACs on the NPU at 1 GMAC/s: 1 ms) -> MUL float on the CPU (5e5 MACs at 0.5 GMAC/s: 1 ms)
    # -> ADD int16 on the NPU (1e6 MACs x 4 / 1 GMAC/s: 4 ms); two crossings of 1 ms + 1000 bytes at 1 GB/s.
    ops = [OpInfo(0, "CONV_2D", "int8", 1_000_000, (0,), (1,), 1000),
           OpInfo(1, "MUL", "float32", 500_000, (1,), (2,), 1000),
           OpInfo(2, "ADD", "int16", 1_000_000, (2,), (3,), 1000)]
    p = npu_price(TOY, ops)
    assert p.eligible and p.detail["crossings"] == 2 and p.detail["cpu_ops"] == 1
    assert p.cost == pytest.approx(1 + 1 + 4 + 2 * (1 + 0.001))


def test_more_cpu_ops_than_the_budget_make_a_plan_the_target_cannot_run():
    ops = [OpInfo(i, "MUL", "float32", 10, (i,), (i + 1,), 4) for i in range(3)]
    p = npu_price(TOY, ops)
    assert not p.eligible and "3 ops left to the CPU" in p.reason
    assert npu_price(TOY, ops, cpu_op_budget=3).eligible


def test_the_targets_are_one_name_each_and_say_where_their_figure_comes_from():
    from harness.quantize.cost import TARGETS, check_target, cost_source

    assert TARGETS == {"cpu": "measured", "imx8mp-vx": "modelled", "imx93": "vela"}
    with pytest.raises(HarnessError, match="unknown target 'ethos-u'"):
        check_target("ethos-u")  # the Ethos-U board is named for the board: imx93
    assert cost_source("imx8mp-vx") == "modelled" and cost_source("cpu") == "measured p50 on this host"
    assert npu_price(TOY, [OpInfo(0, "CONV_2D", "int8", 10, (0,), (1,), 4)]).detail["cost_source"] == "modelled"


def test_quantize_and_dequantize_do_not_count_against_the_budget():
    ops = [OpInfo(0, "QUANTIZE", "int8", 10, (0,), (1,), 4), OpInfo(1, "CONV_2D", "int8", 10, (1,), (2,), 4),
           OpInfo(2, "DEQUANTIZE", "float32", 10, (2,), (3,), 4)]
    assert npu_price(TOY, ops, cpu_op_budget=0).eligible


# --------------------------------------------------------------------------------------------------
# Plans as JSON


def test_a_plan_round_trips_through_json_and_its_key_ignores_name_and_versions():
    p = Plan("x", "int8", SOURCE, CAL, float_layers=("b", "a"), note="n")
    d = json.loads(json.dumps(p.to_dict()))
    assert d["format"] == PLAN_FORMAT and d["seeds"] == {"calibration_draw": None}
    q = Plan.from_dict(d)
    assert q == p and q.key() == Plan("y", "int8", SOURCE, CAL, float_layers=("a", "b"), versions={}).key()
    assert Plan("x", "16x8", SOURCE, CAL).key() != p.key()


def test_a_search_record_replays_its_chosen_plan(tmp_path):
    p = Plan("int8", "int8", SOURCE, CAL)
    rec = {"kind": "quant_search", "chosen": "int8", "candidates": [{"name": "int8", "plan": p.to_dict()}]}
    (tmp_path / "s.json").write_text(json.dumps(rec))
    assert read_plan(tmp_path / "s.json") == p
    rec["chosen"] = None
    (tmp_path / "s.json").write_text(json.dumps(rec))
    with pytest.raises(HarnessError, match="chose no plan"):
        read_plan(tmp_path / "s.json")


# --------------------------------------------------------------------------------------------------
# On a tiny SavedModel built here: hygiene, replay byte for byte


SIDE = 24


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """conv 3x3 (3->6) + relu6, a MUL by a constant, conv 1x1 (6->2): float32 [1,24,24,3] -> `out`."""
    import numpy as np
    from synthetic import import_tf

    tf = import_tf()
    rng = np.random.default_rng(11)
    w1 = tf.constant(rng.normal(0, 0.05, (3, 3, 3, 6)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.3, (1, 1, 6, 2)).astype(np.float32))

    class Small(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, SIDE, SIDE, 3], tf.float32, name="images")])
        def serve(self, images):
            h = tf.nn.relu6(tf.nn.conv2d(images, w1, 1, "SAME")) * 0.7
            return {"out": tf.nn.conv2d(h, w2, 1, "SAME")}

    module = Small()
    d = tmp_path_factory.mktemp("small") / "saved_model"
    tf.saved_model.save(module, str(d), signatures={"serving_default": module.serve})
    return d


def _images(directory: Path, n: int, seed: int, first: int = 0) -> Path:
    import numpy as np
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(directory / f"{first + i:012d}.jpg")
    return directory


@pytest.fixture(scope="module")
def cal_dir(tmp_path_factory) -> Path:
    return _images(tmp_path_factory.mktemp("cal") / "images", 6, 1)


def _small_plan(model: Path, cal_dir: Path, mode: str = "int8", **kw) -> Plan:
    from harness.common.identity import model_sha256
    from harness.quantize.calibration import draw_calibration

    cal = draw_calibration(cal_dir, size=(SIDE, SIDE), count=4, seed=2)
    return Plan(f"small {mode}", mode, {"path": str(model), "sha256": model_sha256(model)}, cal.to_dict(), **kw)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_calibration_images_that_are_validation_images_are_refused_unless_allowed(tmp_path, cal_dir):
    from harness.analyse.precision.run import _hygiene
    from harness.quantize.calibration import draw_calibration

    val = _images(tmp_path / "val", 3, 9, first=100)
    cal = draw_calibration(cal_dir, size=(SIDE, SIDE), count=6, draw="sorted")
    assert _hygiene(cal, val, False)["overlap"] is False
    shutil.copyfile(cal_dir / cal.files[0], val / "renamed.jpg")  # the same image under another name
    with pytest.raises(HarnessError, match=r"1 of 6 calibration images are validation images.*--allow-overlap"):
        _hygiene(cal, val, False)
    said = _hygiene(cal, val, True)
    assert said["overlap"] and said["overlap_allowed"] and said["overlap_count"] == 1


@pytest.mark.parametrize("extra", [{}, {"float_layers": ()}])
def test_a_plan_rebuilds_the_same_bytes_twice(small_model, cal_dir, tmp_path, extra):
    from harness.quantize.plan import build

    plan = _small_plan(small_model, cal_dir, **extra)
    build(plan, tmp_path / "a.tflite")
    build(plan, tmp_path / "b.tflite")
    assert _sha(tmp_path / "a.tflite") == _sha(tmp_path / "b.tflite")


def test_a_plan_with_float_layers_replays_byte_for_byte_through_the_cli(small_model, cal_dir, tmp_path):
    from harness.cli import main
    from harness.quantize.convert import convert, op_outputs

    names = [n for op, n in op_outputs(convert(small_model, "float32")) if op == "MUL"]
    plan = _small_plan(small_model, cal_dir, float_layers=tuple(names), float_ops=("MUL",))
    (tmp_path / "plan.json").write_text(json.dumps(plan.to_dict()))
    for out in ("a.tflite", "b.tflite"):
        assert main(["quantize", "--plan", str(tmp_path / "plan.json"), "--out", str(tmp_path / out)]) == 0
    assert _sha(tmp_path / "a.tflite") == _sha(tmp_path / "b.tflite")
    side = json.loads((tmp_path / "a.tflite.json").read_text())
    assert side["plan"]["key"] == plan.key() and side["float_layers"] == names


def test_a_16x8_plan_replays_byte_for_byte(small_model, cal_dir, tmp_path):
    from harness.quantize.plan import build

    plan = _small_plan(small_model, cal_dir, "16x8")
    first = build(plan, tmp_path / "a.tflite")["output"]["sha256"]
    assert first == build(plan, tmp_path / "b.tflite")["output"]["sha256"]


def test_a_plan_of_another_savedmodel_or_other_versions_is_refused(small_model, cal_dir, tmp_path):
    import dataclasses

    from harness.quantize.plan import build

    plan = _small_plan(small_model, cal_dir)
    with pytest.raises(HarnessError, match="not the SavedModel the plan was made from"):
        build(dataclasses.replace(plan, source={**plan.source, "sha256": "1" * 64}), tmp_path / "x.tflite")
    drifted = dataclasses.replace(plan, versions={**plan.versions, "tensorflow": "0.0"})
    with pytest.raises(HarnessError, match=r"other versions.*--allow-version-drift"):
        build(drifted, tmp_path / "x.tflite")
    assert build(drifted, tmp_path / "x.tflite", allow_version_drift=True)["version_drift"]
    # The converter's plans do not go through ai-edge-quantizer: its absence or version is no drift.
    assert not version_drift(dataclasses.replace(plan, versions={**plan.versions, "ai-edge-quantizer": "0.0"}))


def test_the_plan_cli_refuses_a_savedmodel_argument(small_model, tmp_path, capsys):
    from harness.cli import main

    assert main(["quantize", str(small_model), "--plan", str(tmp_path / "p.json"), "--out", "x"]) != 0
    assert "give only --out" in capsys.readouterr().err


def test_int8_with_named_layers_at_16_bit_activations(small_model, cal_dir, tmp_path):

    from harness.quantize.convert import convert, op_outputs
    from harness.quantize.plan import build

    pytest.importorskip("ai_edge_quantizer")
    layers = [n for op, n in op_outputs(convert(small_model, "float32")) if op == "CONV_2D"]
    assert len(layers) == 2  # the constant MUL is folded into the second conv's weights
    plan = _small_plan(small_model, cal_dir, "int8+a16", a16_tensors=(layers[0],))
    a = build(plan, tmp_path / "a.tflite")
    assert a["output"]["sha256"] == build(plan, tmp_path / "b.tflite")["output"]["sha256"]
    from harness.quantize.cost import graph_ops

    convs = [op.precision for op in graph_ops(tmp_path / "a.tflite") if op.op == "CONV_2D"]
    assert convs == ["int16", "int8"]


# --------------------------------------------------------------------------------------------------
# The real search on the mirror's mb3-centernet (about 5 minutes on two cores)


@pytest.mark.slow
def test_the_search_on_mb3_centernet_writes_a_record_and_a_plan_that_replays(mirror, tmp_path):
    """The whole search on the real model, its 159 validation images and Vela, with a small calibration: 20 of
    the first 40 unlabeled images (every calibration, the all-images variant included, is a TF conversion that
    costs minutes per hundred images; what the search proves does not depend on how many)."""
    from harness.cli import main
    from harness.records.schema import read_record_file

    raw = mirror / "models" / "mb3-centernet" / "raw"
    calib = tmp_path / "val2017_unlabeled"
    calib.mkdir()
    for image in sorted((mirror / "coco" / "val2017_unlabeled").glob("*.jpg"))[:40]:
        shutil.copyfile(image, calib / image.name)
    out = tmp_path / "chosen.tflite"
    assert main(["quantize", str(raw), "--max-drop", "2", "--target", "imx93", "--no-a16", "--max-steps", "1",
                 "--screen-images", "20", "--calib", str(calib), "--count", "20", "--mirror", str(mirror),
                 "--out", str(out), "--json", str(tmp_path / "search.json")]) == 0
    (rec,) = read_record_file(tmp_path / "search.json")
    assert rec["kind"] == "quant_search" and rec["calibration"]["overlap"] is False
    assert rec["calibration"]["dir"].endswith("val2017_unlabeled") and rec["validate"]["image_count"] == 159
    assert len(rec["calibration"]["files"]) == 20
    # The search selects on the first 80 of the 159 images and reports on the other 79 (the winner's curse).
    assert (rec["validate"]["select"]["images"], rec["validate"]["report"]["images"]) == (80, 79)
    # the mirror card's float AP on those 80 images (`harness eval mb3-centernet-f32 --max-images 80`: 28.04)
    assert rec["float"]["ap"] == pytest.approx(28.04, abs=0.05)
    rows = {c["name"]: c for c in rec["candidates"]}
    assert set(rec["references"].values()) <= set(rows)
    assert rows[rec["references"]["int8"]]["delta_ap"] < -20  # full int8 collapses (0.36 AP with NXP's draw)
    # imx93 is priced by Vela: float32 cannot run on its NPU, full int8 can, at Vela's estimate.
    assert rec["cost_source"].startswith("vela ")
    assert not rows[rec["references"]["float32"]]["cost_detail"]["eligible"]
    assert rows[rec["references"]["int8"]]["cost_detail"]["cost_source"].startswith("vela ")
    if rec["chosen"]:
        assert rows[rec["chosen"]]["meets_budget"] and rows[rec["chosen"]]["images"] == 80
        rep = rec["reported"]
        assert rep["held_out"] and rep["images"] == 79 and rep["delta_ap"] == pytest.approx(rep["ap"] - rep["float_ap"])
        assert main(["quantize", "--plan", f"{out}.plan.json", "--out", str(tmp_path / "again.tflite")]) == 0
        assert _sha(tmp_path / "again.tflite") == _sha(out)
    else:
        assert rec["closest"] in rows


def test_on_imx93_an_op_vela_leaves_to_the_cpu_is_reported_counted_and_charged(small_model, cal_dir, tmp_path):
    # The first conv kept in float: Vela cannot place it (float32 tensors), so it stays on the CPU between a
    # DEQUANTIZE and a QUANTIZE. Its MACs, counted by hand: 24*24 outputs x 6 channels x 3*3*3 = 93312, at the
    # modelled 2 GMAC/s of the CPU: 0.046656 ms on top of Vela's NPU estimate.
    pytest.importorskip("ethosu.vela")
    from harness.quantize.convert import convert, op_outputs
    from harness.quantize.cost import price
    from harness.quantize.plan import build

    first_conv = next(n for op, n in op_outputs(convert(small_model, "float32")) if op == "CONV_2D")
    build(_small_plan(small_model, cal_dir, float_layers=(first_conv,)), tmp_path / "m.tflite")
    p = price("imx93", tmp_path / "m.tflite", p50_ms=lambda: None, out_dir=tmp_path / "npu")
    assert p.eligible and p.detail["cpu_op_types"] == ["CONV_2D"] and p.detail["cpu_ops"] == 1
    assert p.detail["ms"]["cpu_modelled"] == pytest.approx(0.046656, abs=1e-3)
    assert p.cost == pytest.approx(p.detail["ms"]["npu"] + 0.046656, abs=1e-3)
    assert p.detail["cost_source"].endswith("+ modelled CPU ops")
    tight = price("imx93", tmp_path / "m.tflite", p50_ms=lambda: None, cpu_op_budget=0, out_dir=tmp_path / "n2")
    assert not tight.eligible and "Vela left 1 ops to the CPU (CONV_2D) > budget 0" in tight.reason

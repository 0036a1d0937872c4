"""The precision search against the winner's curse: it chooses on one part of the validation images and
reports the chosen plan's AP on the others (synthetic trials whose AP per part is given, so the answer
is known by construction)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_quant_search import FakeTrials, plans

from harness.analyse.precision.run import select_count
from harness.analyse.precision.search import Budget, best, held_out, search
from harness.errors import HarnessError


class SplitTrials(FakeTrials):
    """FakeTrials with a second AP per plan on the held-out images."""

    def __init__(self, tmp: Path, table: dict[str, tuple], held: dict[str, float]) -> None:
        super().__init__(tmp, table)
        self.held = held
        self.held_scored: list[tuple[str, int]] = []

    def build(self, plan):
        """FakeTrials' file per plan key, renamed per plan: the held-out step reads the files again later."""
        path = super().build(plan)
        return path.rename(path.with_name(f"{plan.name}.tflite"))

    def held_out_ap(self, path: Path, after: int) -> float:
        name = self._name(path)
        self.held_scored.append((name, after))
        return self.held[name]


def test_the_choice_is_made_on_the_selection_images_and_reported_on_the_others(tmp_path):
    # On the 80 selection images float scores 28.5 and "lucky" loses 1.0 (within the budget of 2, cheapest);
    # on the 79 others float scores 28.0 and "lucky" 25.5: -2.5, beyond the budget, which only they can show.
    t = SplitTrials(tmp_path, {"f32": (28.5, 100.0, False), "lucky": (27.5, 1.0, True), "safe": (28.3, 3.0, True)},
                    held={"f32": 28.0, "lucky": 25.5, "safe": 27.9})
    budget = Budget(2.0, 28.5, select_images=80)
    done = search(plans("f32", "lucky", "safe", refs={"f32": "float32"}), t, budget)
    chosen = best(done)
    assert chosen.name == "lucky" and chosen.images == 80 and chosen.delta_ap == -1.0
    assert {n for n, images in t.scored} == {"f32", "lucky"} and all(images == 80 for _, images in t.scored)
    f32_path = Path(done[0].model_path)
    rep = held_out(chosen, f32_path, t, budget, 159)
    assert rep["held_out"] and rep["images"] == 79 and rep["after"] == 80
    assert (rep["ap"], rep["float_ap"], rep["delta_ap"]) == (25.5, 28.0, -2.5)
    assert sorted(t.held_scored) == [("f32", 80), ("lucky", 80)]  # only float and the chosen plan, once each
    assert "beyond the budget 2" in rep["note"] and "other 79" in rep["note"]


def test_float_chosen_is_reported_against_itself(tmp_path):
    t = SplitTrials(tmp_path, {"f32": (28.5, 1.0, True)}, held={"f32": 27.0})
    budget = Budget(2.0, 28.5, select_images=80)
    done = search(plans("f32", refs={"f32": "float32"}), t, budget)
    rep = held_out(best(done), Path(done[0].model_path), t, budget, 159)
    assert (rep["ap"], rep["float_ap"], rep["delta_ap"]) == (27.0, 27.0, 0.0)


def test_without_a_split_the_report_says_it_is_the_selection_ap(tmp_path):
    t = SplitTrials(tmp_path, {"f32": (28.5, 100.0, False), "a": (27.5, 1.0, True)}, held={})
    budget = Budget(2.0, 28.5)
    done = search(plans("f32", "a", refs={"f32": "float32"}), t, budget)
    rep = held_out(best(done), Path(done[0].model_path), t, budget, 159)
    assert not rep["held_out"] and rep["images"] == 159 and (rep["ap"], rep["delta_ap"]) == (27.5, -1.0)
    assert "same 159 images" in rep["note"] and "winner's curse" in rep["note"]
    assert t.held_scored == [] and all(images is None for _, images in t.scored)


def test_no_plan_chosen_reports_nothing(tmp_path):
    t = SplitTrials(tmp_path, {"a": (15.0, 1.0, True)}, held={"a": 14.0})
    budget = Budget(2.0, 28.5, select_images=80)
    done = search(plans("a"), t, budget)
    rep = held_out(best(done), tmp_path / "none", t, budget, 159)
    assert rep["ap"] is None and t.held_scored == [] and "no plan chosen" in rep["note"]


@pytest.mark.parametrize(("asked", "n", "want"), [(None, 159, 80), (None, 2, 1), (None, 1, None), (0, 159, None),
                                                  (100, 159, 100), (159, 159, None), (200, 159, None)])
def test_how_many_images_select(asked, n, want):
    """Half by default (the larger half selects); 0 or a count that leaves nothing to report: no split."""
    assert select_count(asked, n) == want


def test_a_negative_selection_is_refused():
    with pytest.raises(HarnessError, match="--select-images"):
        select_count(-1, 159)


def test_the_printout_says_where_the_ap_was_chosen_and_where_it_is_reported():
    from harness.cli.quantize import format_search

    rec = {"float": {"ap": 28.5, "p50_ms": 10.0, "size_bytes": 1}, "max_drop": 2.0, "target": "cpu", "candidates": [],
           "search": {"note": "n", "wall_s": 1.0}, "output": {"model": None}, "validate": {"select": {"images": 80}},
           "reported": {"note": "selected on the first 80 validation images; on the other 79 ..."}}
    text = format_search(rec)
    assert "on 80 validation images (the ones the choice was made on)" in text
    assert "reported: selected on the first 80 validation images; on the other 79" in text

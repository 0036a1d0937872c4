"""The command line as a set of thin modules over application functions, and what they share.

The commands' behaviour is tested per command (test_errors, test_bench, test_detect, ...); here: the
registry, `compare`'s sub-verbs, the mirror layout, the one record reader, the progress bar, and that an
eval of a .tflite on a board imports no heavy package.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from board import run_board_command
from fake_records import bench_record, eval_record

import harness.cli
from harness.cli import COMMANDS, main
from harness.common.summary import Progress, progress_enabled
from harness.errors import HarnessError
from harness.models.fetch import MIRROR_ENV
from harness.models.mirror import Mirror
from harness.models.zoo import ZOO
from harness.records.reader import card_from_record, collect, load_records, read_record

# The command surface as designed (score and merge folded into eval, the comparisons into `compare`'s
# sub-verbs; `fetch` for downloads, `compile` for NPU compilers): an outside list, so a command dropped from the
# registry fails here.
EXPECTED_COMMANDS = {"eval", "bench", "detect", "compare", "quantize", "compile", "doctor", "zoo", "demo", "store",
                     "report", "check", "fetch"}


def test_every_command_is_one_small_module_in_the_registry():
    assert set(COMMANDS) == EXPECTED_COMMANDS
    for name, module in COMMANDS.items():
        assert name == module.NAME and callable(module.configure) and callable(module.run)
    for path in Path(harness.cli.__file__).parent.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


def test_eval_of_a_tflite_path_on_a_board_imports_no_heavy_package(mirror, tmp_path):
    """eval = bench's and detect's board path plus COCO scoring: still no TensorFlow, pandas, matplotlib; and it
    runs without scipy, which the interval uses where it is installed (numpy otherwise, the same values)."""
    pytest.importorskip("ai_edge_litert")
    model = Mirror(mirror).models / "mb3-centernet" / "raw_f32.tflite"
    run = run_board_command(["eval", model, "--like", "mb3-centernet-f32", "--max-images", 2, "--mirror", mirror,
                             "--out", tmp_path, "--quiet"], hide=["scipy"])
    assert (run.rc, run.heavy) == (0, [])
    assert "raw_f32.tflite: 2 images of val2017" in run.stdout


# --------------------------------------------------------------------------------------------------
# compare latency


@pytest.fixture
def two_bench_records(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(bench_record("mb3-centernet-int8", [0.010, 0.011, 0.012])))
    b.write_text(json.dumps(bench_record("mb3-centernet-int8", [0.020, 0.022, 0.024])))
    return a, b


def test_compare_latency_prints_b_over_a(two_bench_records, capsys):
    assert main(["compare", "latency", *map(str, two_bench_records)]) == 0
    out = capsys.readouterr().out
    assert "like for like" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["model_only", "p50_s", "11.00", "22.00", "2.000"] in rows  # p50 of the samples above: 11 ms, 22 ms


def test_the_old_comparison_spellings_are_gone(two_bench_records, capsys):
    """No alias: `compare A B` and `compare-latency A B` are usage errors (exit 2, one line)."""
    for argv in (["compare", *map(str, two_bench_records)], ["compare-latency", *map(str, two_bench_records)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("harness: error: argument ") and err.count("\n") == 1 and "invalid choice" in err


def test_compare_latency_refuses_a_record_of_another_kind(two_bench_records, tmp_path, capsys):
    other = tmp_path / "eval.json"
    other.write_text(json.dumps(eval_record("mb3-centernet-int8", 0.2)))
    assert main(["compare", "latency", str(two_bench_records[0]), str(other)]) == 2
    err = capsys.readouterr().err
    assert err == f"harness: error: {other} is not a bench run record (harness bench --json)\n"


def test_compare_latency_validates_records(two_bench_records, tmp_path, capsys):
    """A JSON file that is not a harness record is refused by the schema check, in one line naming it."""
    other = tmp_path / "c.json"
    other.write_text(json.dumps({"kind": "bench", "phases": {}}))
    assert main(["compare", "latency", str(two_bench_records[0]), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {other}: not a harness run record") and err.count("\n") == 1


# --------------------------------------------------------------------------------------------------
# The record reader


def test_read_record_upgrades_a_v1_record(tmp_path):
    rec = eval_record("mb3-centernet-int8", 0.2)
    rec["schema_version"] = 1
    del rec["model"]["family"], rec["model"]["precision"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(rec))
    got = read_record(path, kind="eval")
    assert got["model"]["family"] == "mb3-centernet" and got["model"]["precision"] == "int8"


def test_read_record_wants_one_record(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps([bench_record("mb3-centernet-int8", [0.01])] * 2))
    with pytest.raises(HarnessError, match="holds 2 run records; expected one"):
        read_record(path)
    assert len(collect([tmp_path])) == 2


def test_load_records_counts_a_record_once_and_wants_some(tmp_path):
    rec = bench_record("mb3-centernet-int8", [0.01])
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(rec))
    (tmp_path / "detections.json").write_text("[]")  # not a record: skipped in a directory
    assert len(load_records([tmp_path])) == 1
    with pytest.raises(HarnessError, match="no run records"):
        load_records([])


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_card_reads_back_from_its_record(name):
    """merge rebuilds the card from the shards' records: the same card, field for field, as JSON."""
    card = ZOO[name]
    as_read = json.loads(json.dumps(card.to_dict()))
    back = card_from_record(as_read)
    assert json.loads(json.dumps(back.to_dict())) == as_read
    assert back.baseline == card.baseline


# --------------------------------------------------------------------------------------------------
# The mirror and progress


def test_mirror_layout_is_the_readme_s(mirror):
    """../shared/mirror/README.md: coco/val2017 + annotations, val2017_unlabeled, the NXP list, models/."""
    m = Mirror(mirror)
    assert m.val_annotations == mirror / "coco" / "annotations" / "instances_val2017.json"
    assert m.val_annotations.is_file() and m.val_images.is_dir() and m.train_images.is_dir()
    assert len(list(m.val_images.glob("*.jpg"))) == 159
    assert len(list(m.unlabeled_images.glob("*.jpg"))) == 400
    assert len(json.loads(m.nxp_calibration_list.read_text())) == 100
    assert (m.models / "mb3-centernet" / "raw_int8.tflite").is_file()


def test_mirror_comes_from_the_option_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert Mirror.find(None) == Mirror(tmp_path)
    (tmp_path / "other").mkdir()
    assert Mirror.find(tmp_path / "other") == Mirror(tmp_path / "other")  # the option wins
    with pytest.raises(HarnessError, match=r"mirror directory not found: .*nowhere.* --mirror"):
        Mirror.find(tmp_path / "nowhere")
    monkeypatch.delenv(MIRROR_ENV)
    assert Mirror.find(None) is None
    with pytest.raises(HarnessError, match="needs the mirror"):
        Mirror.require(None, "the demo needs the mirror")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_rate_and_eta_on_a_terminal_only(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    tty = _Tty()
    with Progress(4, "eval m", stream=tty) as bar:
        for done in range(1, 5):
            bar(done)
    text = tty.getvalue()
    assert "eval m" in text and "4/4" in text and "img/s" in text
    logs = io.StringIO()
    with Progress(4, "eval m", stream=logs) as bar:
        bar(4)
    assert logs.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(_Tty())


# --------------------------------------------------------------------------------------------------
# One eval record builder


def test_a_merged_record_is_an_eval_record_like_the_single_run_s(mirror, tmp_path, capsys):
    """eval and eval --merge build the eval record with one function: same fields, same card and protocol blocks."""
    def run(record: Path, *argv: object) -> dict:
        assert main([str(a) for a in (*argv, "--json", record)]) == 0, capsys.readouterr().err
        return json.loads(record.read_text())

    common = ("eval", "mb3-centernet-f32", "--mirror", mirror, "--max-images", 3, "--quiet", "--out")
    single = run(tmp_path / "single.json", *common, tmp_path / "single")
    shards = [tmp_path / f"shard{i}.json" for i in (1, 2)]
    for i, path in enumerate(shards, start=1):
        run(path, *common, tmp_path / "shards", "--shard", f"{i}/2")
    merged = run(tmp_path / "merged.json", "eval", "--merge", *shards, "--out", tmp_path / "merged", "--quiet")
    assert set(merged) - set(single) == {"merged_from"} and set(single) - set(merged) == set()
    for key in ("model", "model_label", "protocol", "backend", "comparison", "run_key"):
        assert merged[key] == single[key], key
    assert merged["results"]["stats"] == single["results"]["stats"]

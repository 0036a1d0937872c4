"""Sharded eval: `harness eval --shard i/N` on N machines, then `harness eval --merge`, equals one run exactly.

The slow test runs the real mb3-centernet-f32 over all of the mirror's 159 val2017 images once whole
and once as 3 shards; the others run 3 shards over a few images and then break the records on purpose.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.measure.shard import Shard, combine_timings, interleave

MODEL = "mb3-centernet-f32"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------------------------------
# The split itself


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("1/3", Shard(1, 3)), ("3/3", Shard(3, 3)),
                                             ("12/40", Shard(12, 40))])
def test_parse(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard
    assert str(shard) == text


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "-1/3", "3", "a/b", "1/3/5", "", "/"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(HarnessError, match=r"--shard wants i/N with 1 <= i <= N"):
        Shard.parse(text)


def test_shards_partition_the_images_round_robin() -> None:
    """Each image in exactly one shard; shard sizes differ by at most one; interleave restores the order."""
    items = list(range(100, 111))
    parts = [Shard(i, 3).select(items) for i in (1, 2, 3)]
    assert parts == [[100, 103, 106, 109], [101, 104, 107, 110], [102, 105, 108]]
    assert interleave(parts) == items
    assert Shard(2, 20).select(items) == [101]
    assert Shard(15, 20).select(items) == []


def test_combined_timing_sums_machine_time() -> None:
    a = {"wall_s": 2.0, "model_s": 1.0, "decode_s": 0.5, "wait_s": 0.1, "images": 4}
    b = {"wall_s": 4.0, "model_s": 3.0, "decode_s": 0.5, "wait_s": 0.3, "images": 4}
    t = combine_timings([a, b])
    assert (t["wall_s"], t["model_s"], t["images"], t["model_ms_mean"]) == (6.0, 4.0, 8, 500.0)
    assert t["per_shard"] == [a, b]


# --------------------------------------------------------------------------------------------------
# eval --shard + merge


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def eval_shards(capsys, mirror: Path, root: Path, n_images: int | None, count: int = 3) -> list[Path]:
    """Run every shard as a CI matrix job would: its own output folder with its record beside the detections."""
    limit = ["--max-images", n_images] if n_images else []
    records = []
    for i in range(1, count + 1):
        job = root / f"job{i}"
        rc, _, err = run(capsys, "eval", MODEL, "--mirror", mirror, *limit, "--shard", f"{i}/{count}", "--quiet",
                         "--out", job, "--json", job / "record.json")
        assert rc == 0, err
        records.append(job / "record.json")
    return records


@pytest.mark.slow
def test_three_shards_merged_equal_one_run_on_the_mirror(capsys, mirror: Path, tmp_path: Path) -> None:
    """All 159 mirror images: the merged detections file is the single run's, byte for byte, and so
    are the 12 stats and the per-class APs."""
    rc, _, err = run(capsys, "eval", MODEL, "--mirror", mirror, "--quiet", "--out", tmp_path / "single",
                     "--json", tmp_path / "single.json")
    assert rc == 0, err
    single = json.loads((tmp_path / "single.json").read_text())
    assert single["dataset"]["image_count"] == 159

    records = eval_shards(capsys, mirror, tmp_path, None)
    sizes = [json.loads(r.read_text())["dataset"]["image_count"] for r in records]
    assert sizes == [53, 53, 53]
    rc, out, err = run(capsys, "eval", "--merge", *records, "--out", tmp_path / "merged", "--json",
                       tmp_path / "merged.json")
    assert rc == 0, err
    assert "merged 3 shards: 159 images" in out

    name = f"detections_{MODEL}_native.json"
    assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["results"]["stats"] == single["results"]["stats"]
    assert merged["results"]["per_class"] == single["results"]["per_class"]
    assert merged["results"]["detection_count"] == single["results"]["detection_count"]
    for key in ("image_count", "image_ids_sha256", "annotation_sha256", "annotation_count", "split"):
        assert merged["dataset"][key] == single["dataset"][key], key
    assert merged["run_key"] == single["run_key"]
    assert merged["comparison"] == single["comparison"]
    assert merged["timing"]["images"] == 159
    assert merged["merged_from"] == [str(r) for r in records]


@pytest.fixture
def shards(capsys, mirror: Path, tmp_path: Path) -> list[Path]:
    """3 shards over the first 5 images (sizes 2, 2, 1)."""
    return eval_shards(capsys, mirror, tmp_path / "shards", 5)


def test_merge_of_a_few_images_equals_the_single_run(capsys, mirror: Path, tmp_path: Path,
                                                     shards: list[Path]) -> None:
    rc, _, _ = run(capsys, "eval", MODEL, "--mirror", mirror, "--max-images", 5, "--quiet", "--out",
                   tmp_path / "single")
    assert rc == 0
    rc, _, err = run(capsys, "eval", "--merge", *reversed(shards), "--out", tmp_path / "merged")  # any order
    assert rc == 0, err
    name = f"detections_{MODEL}_native.json"
    assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()


def test_shard_outputs_do_not_collide(shards: list[Path]) -> None:
    """Shards written to one folder keep apart: the shard is in the detections file's name."""
    names = [json.loads(r.read_text())["detections_file"] for r in shards]
    assert [Path(n).name for n in names] == [f"detections_{MODEL}_native.shard-{i}-of-3.json" for i in (1, 2, 3)]


def test_merge_finds_detections_beside_a_moved_record(capsys, tmp_path: Path, shards: list[Path]) -> None:
    """CI artifacts arrive in other folders: a record finds its detections file beside itself."""
    moved = []
    for i, rec in enumerate(shards, start=1):
        dest = tmp_path / "artifacts" / f"shard-{i}"
        shutil.copytree(rec.parent, dest)
        shutil.rmtree(rec.parent)
        moved.append(dest / "record.json")
    rc, _, err = run(capsys, "eval", "--merge", *moved, "--out", tmp_path / "merged")
    assert rc == 0, err


def rewrite(path: Path, change) -> Path:
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))
    return path


def test_merge_errors(capsys, mirror: Path, tmp_path: Path, shards: list[Path]) -> None:
    """Every way a set of shard records can be wrong ends in one line that says what to fix, and no output."""
    def merge(*records: object) -> str:
        rc, _, err = run(capsys, "eval", "--merge", *records, "--out", tmp_path / "merged", "--json",
                         tmp_path / "m.json")
        assert rc == 2, err
        assert len(err.splitlines()) == 1 and err.startswith("harness: error: ") and "Traceback" not in err
        assert not (tmp_path / "merged").exists() and not (tmp_path / "m.json").exists()
        return err

    a, b, c = shards
    assert "missing shard 3/3" in merge(a, b)
    assert "shard 2/3 is given twice" in merge(a, b, b, c)
    assert "run record not found" in merge(a, b, tmp_path / "nope.json")

    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({**json.loads(a.read_text()), "shard": None}))
    assert "not the record of a sharded eval" in merge(plain, b, c)

    tampered = tmp_path / "tampered.json"
    shutil.copyfile(c, tampered)
    rewrite(tampered, lambda r: r["run_key"].update(model_sha256="0" * 64))
    assert "come from different runs (model_sha256" in merge(a, b, tampered)

    rewrite(tampered, lambda r: r.update(run_key=json.loads(c.read_text())["run_key"]))
    rewrite(tampered, lambda r: r["shard"]["image_ids"].append(139))
    assert "do not add up to the run's image list" in merge(a, b, tampered)

    train = mirror / "coco" / "annotations" / "instances_train2017.json"
    assert "evaluated against another annotation file" in merge(a, b, c, "--gt", train)

    four = tmp_path / "four.json"
    shutil.copyfile(c, four)
    rewrite(four, lambda r: r["shard"].update(count=4, index=4))
    assert "different numbers of shards" in merge(a, b, c, four)

    det = Path(json.loads(b.read_text())["detections_file"])
    det.write_text(det.read_text().replace('"score": 0.', '"score": 0.0'))
    assert "is not the detections file" in merge(a, b, c)
    det.unlink()
    assert "detections of" in merge(a, b, c) and "not found" in merge(a, b, c)

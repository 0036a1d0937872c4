"""Hostile and careless inputs across every command: one line and exit 2, or a correct result; never a
traceback, a hang, a silent wrong number or a lost file.

Each case builds its inputs under `in/` of a scratch folder and runs `python -m harness` in a fresh
process (so a hang meets a timeout and a traceback at interpreter exit is seen). After every case each
file under `in/` must be byte for byte what it was. The families follow the ways users lose work:
outputs that are inputs, false claims, write faults, odd files and odd numbers.

Expected values: the fragments of each error line are the policy's words (what is wrong, what to do);
the correct results come from cocoapi's known-answer pair (AP 0.505, its EXPECTED.txt).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

KNOWN = Path("coco/known_answer")
F32 = "models/mb3-centernet/raw_f32.tflite"
TIMEOUT_S = 240


@dataclass(frozen=True)
class Case:
    """`build(tmp, mirror)` makes the inputs under tmp/in and returns argv (after `harness`). With `says`,
    the run must end in one error line holding each fragment; with `ok`, exit 0 and `ok(tmp, stdout)`."""

    build: Callable[[Path, Path], list[object]]
    says: tuple[str, ...] = ()
    ok: Callable[[Path, str], None] | None = None
    root: bool = False  # needs mounts (CI runs as root)
    env: tuple[tuple[str, str], ...] = ()
    rc: int = 0  # the exit status of a correct result (the doctor exits 1 when it finds something)


@cache
def _json(path: Path) -> object:
    return json.loads(path.read_text())


def gt(tmp: Path, mirror: Path, edit: Callable[[dict], None] | None = None) -> Path:
    data = copy.deepcopy(_json(mirror / KNOWN / "instances_val2014_100.json"))
    if edit:
        edit(data)
    out = tmp / "in" / "gt.json"
    out.write_text(json.dumps(data))
    return out


def results(tmp: Path, mirror: Path, edit: Callable[[list], object] | None = None, text: str | None = None) -> Path:
    out = tmp / "in" / "results.json"
    if text is not None:
        out.write_text(text)
        return out
    data = copy.deepcopy(_json(mirror / KNOWN / "instances_val2014_fakebbox100_results.json"))
    if edit:
        data = edit(data) or data
    out.write_text(json.dumps(data))
    return out


def score(edit_results=None, edit_gt=None, text=None, *extra: object) -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        return ["eval", "--gt", gt(tmp, mirror, edit_gt), "--results", results(tmp, mirror, edit_results, text),
                *extra]
    return build


def first(field: str, value: object) -> Callable[[list], None]:
    def edit(data: list) -> None:
        data[0][field] = value
    return edit


def first_box(index: int, value: object) -> Callable[[list], None]:
    def edit(data: list) -> None:
        data[0]["bbox"][index] = value
    return edit


def first_ann(field: str, value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data["annotations"][0][field] = value
    return edit


def model_file(content: bytes, name: str = "model.tflite") -> Callable[[Path, Path], Path]:
    def make(tmp: Path, _: Path) -> Path:
        (tmp / "in" / name).write_bytes(content)
        return tmp / "in" / name
    return make


def eval_of(model: Callable[[Path, Path], object], *extra: object) -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        return ["eval", model(tmp, mirror), "--like", "mb3-centernet-f32", "--mirror", mirror, "--max-images", 2,
                "--workers", 1, "--quiet", "--out", tmp / "out", *extra]
    return build


def mirror_model(_: Path, mirror: Path) -> Path:
    return mirror / F32


def fifo(name: str) -> Callable[[Path, Path], Path]:
    def make(tmp: Path, _: Path) -> Path:
        os.mkfifo(tmp / "in" / name)
        return tmp / "in" / name
    return make


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def ap_is_the_known_answer(tmp: Path, out: str) -> None:
    record = json.loads((tmp / "out" / "run.json").read_text())
    assert abs(record["results"]["stats"]["AP"] - 0.505) < 0.001  # cocoapi's EXPECTED.txt: 0.505


def records_dir(tmp: Path, mirror: Path) -> Path:
    """A folder with one valid score record of the known-answer pair."""
    from harness.cli import main

    (tmp / "in" / "records").mkdir()
    rc = main(["eval", "--gt", str(gt(tmp, mirror)), "--results", str(results(tmp, mirror)), "--json",
               str(tmp / "in" / "records" / "score.json")])
    assert rc == 0
    return tmp / "in" / "records"


def with_record(*argv: object) -> Callable[[Path, Path], list[object]]:
    """argv with {rec} for the record file and {dir} for its folder."""
    def build(tmp: Path, mirror: Path) -> list[object]:
        folder = records_dir(tmp, mirror)
        return [str(a).format(rec=folder / "score.json", dir=folder, tmp=tmp) for a in argv]
    return build


def store_holding(tmp: Path, mirror: Path) -> Path:
    from harness.cli import main

    folder = records_dir(tmp, mirror)
    assert main(["store", "import", str(tmp / "in" / "runs.sqlite"), str(folder)]) == 0
    return tmp / "in" / "runs.sqlite"


def readonly(tmp: Path) -> Path:
    """A read-only bind mount at tmp/ro (root only; unmounted by the test)."""
    ro = tmp / "ro"
    ro.mkdir()
    subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    return ro


def full_disk(tmp: Path) -> Path:
    disk = tmp / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return disk


CASES: dict[str, Case] = {
    # ---- outputs that are inputs: refused before any work, the input kept
    "score-json-is-gt": Case(lambda t, m: [*score()(t, m), "--json", t / "in" / "gt.json"],
                             ("--json", "is also an input", "--gt")),
    "score-json-is-results": Case(lambda t, m: [*score()(t, m), "--json", t / "in" / "results.json"],
                                  ("is also an input", "--results")),
    "score-json-is-results-via-symlink": Case(
        lambda t, m: [*score()(t, m), "--json", _link(t / "in" / "results.json", t / "alias.json")],
        ("is also an input",)),
    "eval-json-is-own-detections": Case(
        eval_of(mirror_model, "--json", "out/detections_raw_f32_native.json"), ("writes itself",)),
    "eval-output-is-a-file": Case(lambda t, m: [*eval_of(mirror_model)(t, m)[:-2], "--out", gt(t, m)],
                                  ("--out", "is a file")),
    "detect-out-is-an-image": Case(
        lambda t, m: ["detect", m / F32, "--like", "mb3-centernet-f32", _copy(m / "coco/val2017", t, 1),
                      "--out", t / "in" / "img0.jpg"], ("--out", "is a file")),
    "report-out-is-a-record": Case(with_record("report", "{rec}", "--out", "{rec}"), ("--out", "is a file")),
    "merge-json-is-a-shard": Case(with_record("eval", "--merge", "{rec}", "--json", "{rec}"), ("is also an input",)),
    "doctor-json-is-results": Case(lambda t, m: ["doctor", *score()(t, m)[1:], "--json", t / "in" / "results.json"],
                                   ("is also an input", "--results")),
    "store-export-onto-itself": Case(lambda t, m: ["store", "export", store_holding(t, m), t / "in" / "runs.sqlite"],
                                     ("is the store itself",)),
    "store-import-into-a-record": Case(with_record("store", "import", "{rec}", "{rec}"),
                                       ("not a harness record store",)),
    # ---- false claims: say only what was checked
    "score-empty-results": Case(score(text="[]"), ("no detections",)),
    "doctor-empty-results": Case(lambda t, m: ["doctor", *score(text="[]")(t, m)[1:]],
                                 ok=lambda t, out: _says(out, "empty-results", "nothing to score"), rc=1),
    "doctor-negative-widths": Case(lambda t, m: ["doctor", *score(_negative_widths)(t, m)[1:]],
                                   ok=lambda t, out: _says(out, "box-impossible"), rc=1),
    "doctor-all-scores-one": Case(lambda t, m: ["doctor", *score(_all_scores(1.0))(t, m)[1:]],
                                  ok=lambda t, out: _says(out, "scores-tied", not_="score-threshold"), rc=1),
    "doctor-corners-and-category-offset": Case(
        lambda t, m: ["doctor", *score(_corners_and_offset)(t, m)[1:]],
        ok=lambda t, out: _says(out, "all fixes together", "50.5"), rc=1),
    "check-on-nothing": Case(lambda t, m: ["check", t / "in"], ("no run records",)),
    # ---- write faults: one line, nothing half-written, the work kept
    "json-under-a-file": Case(lambda t, m: [*score()(t, m), "--json", t / "in" / "gt.json" / "run.json"],
                              ("is a file where a folder is wanted",)),
    "json-is-a-folder": Case(lambda t, m: [*score()(t, m), "--json", t / "in"], ("--json", "is a folder")),
    "json-on-a-full-disk": Case(lambda t, m: [*score()(t, m), "--json", full_disk(t) / "run.json"],
                                ("no space left",), root=True),
    "json-in-a-read-only-folder": Case(lambda t, m: [*score()(t, m), "--json", readonly(t) / "run.json"],
                                       ("cannot write in", "read-only"), root=True),
    "eval-output-read-only": Case(lambda t, m: [*eval_of(mirror_model)(t, m)[:-2], "--out", readonly(t) / "o"],
                                  ("--out", "cannot write in"), root=True),
    "report-out-read-only": Case(lambda t, m: [*with_record("report", "{rec}")(t, m), "--out", readonly(t) / "r"],
                                 ("--out", "cannot write in"), root=True),
    "store-import-read-only": Case(
        lambda t, m: ["store", "import", _ro_store(t, m), t / "in" / "records"], ("cannot write the record store",),
        root=True),
    "store-list-read-only": Case(lambda t, m: ["store", "list", _ro_store(t, m)], ok=lambda t, out: None, root=True),
    "fetch-cache-read-only": Case(lambda t, m: [readonly(t) and "fetch", "coco-annotations-2017", "--quiet"],
                                  ("read-only",), root=True, env=(("HARNESS_CACHE", "{tmp}/ro/cache"),)),
    # ---- odd files: refused at once, never opened
    "results-fifo": Case(lambda t, m: ["eval", "--gt", gt(t, m), "--results", fifo("r.json")(t, m)],
                         ("--results", "FIFO")),
    "gt-fifo": Case(lambda t, m: ["eval", "--gt", fifo("g.json")(t, m), "--results", results(t, m)],
                    ("--gt", "FIFO")),
    "model-fifo": Case(eval_of(fifo("m.tflite")), ("MODEL", "FIFO")),
    "model-device": Case(eval_of(lambda t, m: Path("/dev/zero")), ("MODEL", "a device")),
    "record-fifo": Case(lambda t, m: ["report", fifo("r.json")(t, m), "--out", t / "rep"], ("FIFO",)),
    "model-empty": Case(eval_of(model_file(b"")), ("model.tflite",)),
    "model-is-a-jpeg": Case(eval_of(lambda t, m: _as(m / "coco/val2017", t, "model.tflite")), ("model.tflite",)),
    "delegate-not-a-library": Case(lambda t, m: [*eval_of(mirror_model)(t, m), "--delegate",
                                                 _bytes(t, "libvx.so", b"not a shared library")], ("delegate",)),
    "results-a-directory": Case(lambda t, m: ["eval", "--gt", gt(t, m), "--results", t / "in"],
                                ("is a directory",)),
    "symlink-loop": Case(lambda t, m: ["eval", "--gt", gt(t, m), "--results", _loop(t)], ("results",)),
    # ---- odd JSON and odd numbers: one policy for results and ground truth
    "results-nested-deep": Case(score(text=nested(100_000)), ("nested",)),
    "results-nested-moderately": Case(score(text=nested(200)), ("nested",)),
    "results-31-digit-image-id": Case(score(first("image_id", 10**30)), ("digits",)),
    "results-5000-digit-int": Case(score(text='[{"image_id": ' + "9" * 5000 + "}]"), ("digits",)),
    "results-1e400": Case(score(text='[{"image_id": 42, "category_id": 18, "bbox": [1, 1, 1, 1e400], "score": 1}]'),
                          ("finite",)),
    "results-nan-score": Case(score(first("score", float("nan"))), ("NaN",)),
    "results-nan-box": Case(score(first_box(2, float("nan"))), ("NaN",)),
    "results-string-score": Case(score(first("score", "0.9")), ("not a finite number",)),
    "results-category-true": Case(score(first("category_id", True)), ("integers",)),
    "results-image-id-float": Case(score(first("image_id", 42.0)), ("integers",)),
    "results-box-of-3": Case(score(first("bbox", [1, 2, 3])), ("not a bbox detection",)),
    "results-object-not-list": Case(score(text='{"annotations": []}'), ("JSON list",)),
    "gt-iscrowd-null": Case(score(None, first_ann("iscrowd", None)), ("iscrowd", "0 or 1")),
    "gt-area-string": Case(score(None, first_ann("area", "big")), ("area", "finite number")),
    "gt-bbox-nan": Case(score(None, first_ann("bbox", [1, 1, float("nan"), 2])), ("NaN",)),
    "gt-category-true": Case(score(None, first_ann("category_id", True)), ("category_id",)),
    "gt-not-utf8": Case(lambda t, m: ["eval", "--gt", _bytes(t, "gt.json", b"\xff\xfe{]"), "--results",
                                      results(t, m)], ("not JSON",)),
    "record-nested-deep": Case(lambda t, m: ["report", _bytes(t, "r.json", nested(100_000).encode()), "--out",
                                             t / "rep"], ("nested",)),
    # ---- careless numbers on the command line
    "eval-max-images-zero": Case(eval_of(mirror_model, "--max-images", "0"), ("--max-images",)),
    "bench-threads-zero": Case(lambda t, m: ["bench", m / F32, "--like", "mb3-centernet-f32", "--threads", 0],
                               ("--threads",)),
    # ---- correct results where the input is odd but valid
    "results-with-bom": Case(lambda t, m: [*score(text="\ufeff" + json.dumps(
        _json(m / KNOWN / "instances_val2014_fakebbox100_results.json")))(t, m), "--json", t / "out" / "run.json"],
        ok=ap_is_the_known_answer),
    "paths-with-spaces-and-newline": Case(
        lambda t, m: ["eval", "--gt", _rename(gt(t, m), "g t\nx.json"), "--results", results(t, m), "--json",
                      t / "out" / "run.json"], ok=ap_is_the_known_answer),
}


def _says(out: str, *fragments: str, not_: str | None = None) -> None:
    for fragment in fragments:
        assert fragment in out, out
    assert not_ is None or not_ not in out, out


def _negative_widths(data: list) -> None:
    for r in data:
        r["bbox"][2] = -r["bbox"][2]


def _all_scores(value: float) -> Callable[[list], None]:
    def edit(data: list) -> None:
        for r in data:
            r["score"] = value
    return edit


def _corners_and_offset(data: list) -> None:
    """Two faults at once: [x1, y1, x2, y2] corners, and category ids shifted by one."""
    for r in data:
        x, y, w, h = r["bbox"]
        r["bbox"] = [x, y, x + w, y + h]
        r["category_id"] += 1


def _link(target: Path, link: Path) -> Path:
    link.symlink_to(target)
    return link


def _copy(folder: Path, tmp: Path, n: int) -> Path:
    src = sorted(folder.iterdir())[0]
    dst = tmp / "in" / f"img{n - 1}.jpg"
    shutil.copy(src, dst)
    return dst


def _as(folder: Path, tmp: Path, name: str) -> Path:
    shutil.copy(sorted(folder.iterdir())[0], tmp / "in" / name)
    return tmp / "in" / name


def _bytes(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / "in" / name).write_bytes(data)
    return tmp / "in" / name


def _loop(tmp: Path) -> Path:
    (tmp / "loop-a").symlink_to(tmp / "loop-b")
    (tmp / "loop-b").symlink_to(tmp / "loop-a")
    return tmp / "loop-a"


def _rename(path: Path, name: str) -> Path:
    return path.rename(path.with_name(name))


def _ro_store(tmp: Path, mirror: Path) -> Path:
    store = store_holding(tmp, mirror)
    ro = tmp / "ro"
    ro.mkdir(exist_ok=True)
    shutil.copy(store, ro / "runs.sqlite")
    subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    return ro / "runs.sqlite"


def test_the_corpus_has_forty_cases_or_more() -> None:
    assert len(CASES) >= 40


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input(name: str, tmp_path: Path, mirror: Path) -> None:
    case = CASES[name]
    if case.root and os.geteuid() != 0:
        pytest.skip("needs root for a mount")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    try:
        argv = [str(a) for a in case.build(tmp_path, mirror)]
        before = _hashes(tmp_path / "in")
        env = {**os.environ, "HARNESS_MIRROR": str(mirror),
               **{k: v.format(tmp=tmp_path) for k, v in case.env}}
        proc = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        if case.ok is not None:
            assert proc.returncode == case.rc, proc.stderr[-2000:]
            case.ok(tmp_path, proc.stdout)
        else:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("harness: warning")]
            assert proc.returncode == 2, proc.stderr[-2000:]
            assert len(lines) == 1 and lines[0].startswith("harness: error: "), proc.stderr[-2000:]
            for fragment in case.says:
                assert fragment in lines[0], lines[0]
        assert _hashes(tmp_path / "in") == before, "an input changed"
    finally:
        for mount in ("ro", "disk"):
            if (tmp_path / mount).is_dir():
                subprocess.run(["umount", "-l", str(tmp_path / mount)], check=False, capture_output=True)

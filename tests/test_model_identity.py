"""One identity for a model: a SavedModel directory or a .tflite has one sha256 in every record that names it.

quantize's record (its source and output), compare's record and Pipeline.describe() (what eval and bench
record) must agree, so that records of one model can be joined by hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.cli import main
from harness.models.pipeline import Pipeline
from harness.models.zoo import card_for


def _dir_sha256_by_hand(root: Path) -> str:
    """The documented directory identity: sha256 over sorted lines `relative/path NUL file-sha256 LF`."""
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(root).as_posix()}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def test_one_sha256_per_model_in_quantize_compare_and_pipeline(mirror, tmp_path):
    raw = mirror / "models/mb3-centernet/raw"
    out = tmp_path / "raw_dynamic.tflite"
    assert main(["quantize", str(raw), "--mode", "dynamic", "--out", str(out)]) == 0
    made = json.loads(Path(f"{out}.json").read_text())
    raw_sha = _dir_sha256_by_hand(raw)
    tflite_sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert made["source"]["sha256"] == raw_sha and made["output"]["sha256"] == tflite_sha

    compared = tmp_path / "compare.json"
    assert main(["compare", "quant", str(raw), str(out), "--like", "mb3-centernet-f32", "--images",
                 str(mirror / "coco/val2017"), "--max-images", "1", "--json", str(compared), "--quiet"]) == 0
    rec = json.loads(compared.read_text())
    assert rec["float_model"]["sha256"] == raw_sha and rec["quant_model"]["sha256"] == tflite_sha
    assert [b["model_sha256"] for b in rec["backends"]] == [raw_sha, tflite_sha]

    for path, sha in ((raw, raw_sha), (out, tflite_sha)):
        card = card_for(str(path), like="mb3-centernet-f32")
        assert Pipeline.open(card).describe()["model_sha256"] == sha

    # eval and bench records, through the commands themselves
    for path, sha in ((raw, raw_sha), (out, tflite_sha)):
        ev, be = tmp_path / f"eval_{path.name}.json", tmp_path / f"bench_{path.name}.json"
        assert main(["eval", str(path), "--like", "mb3-centernet-f32", "--mirror", str(mirror), "--max-images", "1",
                     "--out", str(tmp_path / "out"), "--json", str(ev), "--quiet"]) == 0
        assert main(["bench", str(path), "--like", "mb3-centernet-f32", "--random", "--warmup", "0", "--min-count", "1",
                     "--min-duration", "0", "--e2e-min-count", "1", "--e2e-min-duration", "0", "--json", str(be)]) == 0
        e, b = json.loads(ev.read_text()), json.loads(be.read_text())
        assert e["backend"]["model_sha256"] == e["run_key"]["model_sha256"] == sha
        assert b["backend"]["model_sha256"] == b["settings"]["model_sha256"] == sha

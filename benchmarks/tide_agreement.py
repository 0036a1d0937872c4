"""TIDE error decomposition of the mirror's models: the harness against tidecv and hotcoco, and the pairs.

    python benchmarks/tide_agreement.py --records DIR --out benchmarks/results/tide_agreement.json

DIR holds `harness eval` records of the mirror's mb3-centernet artifacts (f32, int8, 16x8, hub: e.g.
`harness eval mb3-centernet-f32 --out DIR --json DIR/mb3-centernet-f32.json`). On the f32 detections the
six main errors and the FP/FN split are computed by harness.scoring.errors (as it is, with tidecv's crowd
bug switched on, and in tidecv-compatible mode), by hotcoco 1.3.0 and by tidecv 1.0.1 (each in a child
process, as tests/test_errors_tidecv.py runs them); for every eval record its own decomposition; for the
pairs f32->int8 and f32->16x8 the change in each error with its paired interval (harness.analyse.error_shift).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from receipts import start, write_artifact

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _oracles(ann: str, dets: str) -> dict:
    from test_errors_tidecv import _HOTCOCO, _TIDECV

    out = {}
    for name, code in (("hotcoco 1.3.0", _HOTCOCO), ("tidecv 1.0.1", _TIDECV)):
        done = subprocess.run([sys.executable, "-c", code, ann, dets], capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        out[name] = {"AP50": r["AP50"], "errors": r["errors"], "special": {"fp": r["fp"], "fn": r["fn"]}}
    return out


def main(argv: list[str] | None = None) -> int:
    from harness.analyse.error_shift import error_shift
    from harness.records.reader import read_record
    from harness.scoring.coco import CocoGroundTruth
    from harness.scoring.errors import assign, decompose

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", required=True, help="folder of the four eval records")
    p.add_argument("--out", required=True, help="the artifact to write")
    args = p.parse_args(argv)
    provenance = start(sys.argv if argv is None else [__file__, *argv])
    t0 = time.perf_counter()
    recs = {m: read_record(Path(args.records) / f"mb3-centernet-{m}.json", kind="eval")
            for m in ("f32", "int8", "16x8", "hub")}
    f32 = recs["f32"]
    ann, dets = f32["dataset"]["annotations"], f32["detections_file"]
    gt = CocoGroundTruth(ann)
    results = json.loads(Path(dets).read_text())
    tools = {}
    for label, kw in (("harness", {}), ("harness, tidecv's crowd bug on", {"crowd_errors": True}),
                      ("harness, tidecv_compat", {"tidecv_compat": True})):
        d = decompose(assign(gt, results, **kw))["sizes"]["all"]
        tools[label] = {"AP50": d["AP50"], "errors": d["errors"], "special": d["special"]}
    tools.update(_oracles(ann, dets))
    evals = {m: r["results"]["errors"] for m, r in recs.items()}
    pairs = {}
    for q in ("int8", "16x8"):
        s = error_shift(f32, recs[q])
        pairs[f"f32->{q}"] = s["paired"] if isinstance(s, dict) else {"reason": s}
    data = {"model": "mb3-centernet-f32", "images": len(gt.images), "tools": tools, "evals": evals, "pairs": pairs}
    write_artifact(args.out, "tide_agreement", provenance, data, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

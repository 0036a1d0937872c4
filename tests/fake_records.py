"""Run records for tests of the store, gates and report: built with the real record code, with hosts,
samples and scores set by the test (what a board's or another CI runner's records would hold)."""

from __future__ import annotations

import copy

import numpy as np

from harness.measure.profiler import summarize
from harness.models.zoo import get_card
from harness.records import host
from harness.records.schema import new_record

BOARDS = {
    "imx8mp": {"hostname": "imx8mp-evk", "cpu_model": "Cortex-A53", "machine": "aarch64", "cores": 4,
               "memory_bytes": 6 * 2**30, "board": "NXP i.MX8MPlus EVK board", "os": "Linux",
               "os_release": "NXP i.MX Release Distro 6.6-scarthgap", "cpufreq": {"governor": "performance"}},
    "imx93": {"hostname": "imx93-evk", "cpu_model": "Cortex-A55", "machine": "aarch64", "cores": 2,
              "memory_bytes": 2 * 2**30, "board": "NXP i.MX93 11X11 EVK board", "os": "Linux",
              "os_release": "NXP i.MX Release Distro 6.6-scarthgap", "cpufreq": {"governor": "schedutil"}},
}


def board_host(name: str) -> dict:
    info = dict(BOARDS[name])
    info["fingerprint"] = host.fingerprint(info)
    return info


def with_samples(rec: dict, samples_s: dict[str, list[float]]) -> dict:
    """A copy of a bench record whose phases hold these samples (stats recomputed from them)."""
    rec = copy.deepcopy(rec)
    for phase, samples in samples_s.items():
        rec["phases"][phase]["samples_s"] = [float(s) for s in samples]
        rec["phases"][phase]["stats"] = summarize(samples)
    return rec


def on_board(rec: dict, board: str, speed: float, seed: int = 0, created: str | None = None) -> dict:
    """A bench record as if measured on a board `speed` times slower, with its own noise."""
    rng = np.random.default_rng(seed)
    out = copy.deepcopy(rec)
    out["host"] = board_host(board)
    if created:
        out["created"] = created
    phases = {p: np.asarray(out["phases"][p]["samples_s"]) * speed * rng.uniform(0.97, 1.05, len(
        out["phases"][p]["samples_s"])) for p in ("model_only", "end_to_end")}
    out = with_samples(out, phases)
    out["phases"]["first_inference_s"] *= speed
    return out


def bench_record(model: str, samples_s: list[float], fingerprint_of: str = "imx8mp", created: str = "",
                 threads: int | None = None) -> dict:
    """A minimal but complete bench record for the gate tests."""
    card = get_card(model)
    stats = summarize(samples_s)
    phase = {"what": "invoke", "rule": {}, "stats": stats, "samples_s": list(samples_s)}
    rec = new_record("bench", model=card.to_dict(), model_label=model, backend={"runtime": "ai-edge-litert"},
                     settings={"threads": threads, "delegate": None, "runtime": "ai-edge-litert"},
                     phases={"load_s": 0.1, "first_inference_s": samples_s[0], "warmup": {"samples_s": []},
                             "model_only": phase, "end_to_end": copy.deepcopy(phase)},
                     peak_rss_bytes=100 * 2**20)
    rec["host"] = board_host(fingerprint_of)
    if created:
        rec["created"] = created
    return rec


def eval_record(model: str, ap: float, *, per_class: dict[str, float] | None = None, images: int = 159,
                ids_sha: str = "ids-a", like_for_like: bool = False, created: str = "", runtime: str = "ai-edge-litert",
                protocol: str = "native") -> dict:
    """A minimal eval record: the 12 stats (AP = `ap`, a fraction; the rest derived) and optional per-class AP."""
    card = get_card(model)
    stats = {k: ap for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
                             "ARl")}
    stats["AP50"] = min(1.0, ap * 1.6)
    pc = {name: {"category_id": i + 1, "AP": v, "AP50": v, "APs": v, "APm": v, "APl": v}
          for i, (name, v) in enumerate((per_class or {}).items())}
    base = card.baseline
    rec = new_record(
        "eval", model=card.to_dict(), model_label=model, protocol={"name": protocol},
        backend={"runtime": runtime}, dataset={"split": "val2017", "image_count": images, "image_ids_sha256": ids_sha},
        results={"stats": stats, "per_class": pc, "engine": "faster", "image_count": images},
        comparison={"measured_ap": round(ap * 100, 2),
                    "baseline": {"ap": base.ap, "split": base.split, "images": base.images,
                                 "protocol": base.protocol, "source": base.source, "note": base.note},
                    "like_for_like": like_for_like, "reasons": [] if like_for_like else ["image count differs"]},
    )
    rec["host"] = board_host("imx8mp")
    if created:
        rec["created"] = created
    return rec


def scored_eval_record(model: str, gt, results: list[dict], detections_file, *, created: str = "",
                       interval: dict | None = None) -> dict:
    """An eval record of `results` (official entries) scored on every image of `gt`, its detections written
    to `detections_file`: what `harness eval` writes, without running a model (the paired ΔAP and the
    report read the detections back)."""
    from harness.common.fileio import write_json_atomic
    from harness.scoring.evaluator import score_results

    write_json_atomic(detections_file, results)
    rec = eval_record(model, 0.0, images=len(gt.images), created=created)
    scored = score_results(gt, results)
    rec["results"] = {**scored.to_dict(), **({"interval": interval} if interval else {})}
    rec["dataset"] = gt.describe([i.id for i in gt.images])
    rec["detections_file"] = str(detections_file)
    return rec


RAW = "/work/shared/mirror/models/mb3-centernet/raw"  # where a search's plans start (never read here)


def search_candidate(name: str, ap: float | None, float_ap: float, p50_ms: float | None, size_bytes: int | None,
                     *, max_drop: float = 2.0, cost: float | None = None, status: str = "measured",
                     reason: str = "") -> dict:
    """One candidate of a quant_search record (AP and ΔAP in points, as `harness quantize` keeps them)."""
    delta = None if ap is None else round(ap - float_ap, 2)
    return {"name": name, "plan": {"name": name, "source": {"path": RAW, "sha256": "0" * 64}}, "ap": ap,
            "delta_ap": delta, "p50_ms": p50_ms, "size_bytes": size_bytes, "cost": cost,
            "meets_budget": delta is not None and -delta <= max_drop, "status": status, "reason": reason}


def quant_search_record(candidates: list[dict], *, float_ap: float = 28.50, float_p50_ms: float = 27.0,
                        float_size: int = 8_144_424, target: str = "cpu", max_drop: float = 2.0,
                        chosen: str | None = None, closest: str | None = None, overlap: bool = False,
                        references: dict | None = None, created: str = "", **extra: object) -> dict:
    """A `harness quantize --max-drop` record in the shape the report and check read (`extra`: more keys)."""
    rec = new_record(
        "quant_search", target=target, max_drop=max_drop,
        validate={"split": "val2017", "image_count": 159, "image_ids_sha256": "ids-a"},
        # as harness quantize writes it: the folder, how many images were drawn, and their names
        calibration={"dir": "/mirror/coco/val2017_unlabeled", "draw": "shuffle", "seed": 0, "count": 3,
                     "files": ["a.jpg", "b.jpg", "c.jpg"], "overlap": overlap},
        float={"ap": float_ap, "p50_ms": float_p50_ms, "size_bytes": float_size},
        candidates=candidates, chosen=chosen, closest=closest,
        references=references if references is not None else {"float32": "float32", "int8": "int8",
                                                               "int16x8": "int16x8"}, **extra)
    rec["host"] = board_host("imx8mp")
    if created:
        rec["created"] = created
    return rec

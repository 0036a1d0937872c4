"""The per-layer picture of a quantized model's error: rows in execution order, rankings of where error
is injected and where it grows, and the first bad layer (the measures are explained in
harness.analyse.quant_error.compare).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.analyse.tensor_error import TOP, ErrorStats, rounded

CLEAN_SNR_DB = 60.0  # growth is measured from at most this: an error 60 dB under the signal counts as none
FIRST_BAD_SNR_DB = 20.0  # default threshold: accumulated SNR below this marks where the error starts


@dataclass
class Layer:
    """One op of the quantized model whose output has a float twin."""

    index: int
    op: str
    name: str
    dtype: str
    scale: float | None
    inputs: tuple[str, ...]  # names of its activation inputs (through unmatched ops such as QUANTIZE)
    acc: ErrorStats = field(default_factory=ErrorStats)
    layerwise: ErrorStats | None = None
    layerwise_scale: float | None = None


def summarize_layers(layers: Sequence[Layer], input_stats: tuple[str, ErrorStats],
                     threshold_db: float = FIRST_BAD_SNR_DB) -> dict:
    """Per-layer rows in execution order, the rankings, and the first layer below the threshold.

    `injected_snr_db` is the error an op adds on its own: measured layer-wise when the debugger ran,
    else estimated as the rounding of its output to its quantization step. Its noise-to-signal ratios
    add up to first order, so `share` is each op's part of their sum and `ranking` orders by it.
    Without any quantized activation (dynamic range) the ranking falls back to `growth_db`.
    """
    snr: dict[str, float | None] = {input_stats[0]: input_stats[1].snr_db}
    rows: list[dict[str, Any]] = []
    for layer in layers:
        out = layer.acc.snr_db
        rounding = layer.acc.rounding_snr_db(layer.scale)
        ins = [v for n in layer.inputs if (v := snr.get(n)) is not None]
        # Loss against the worse of its inputs, its own rounding (that is injected error, counted apart)
        # and CLEAN_SNR_DB (so that 150 dB -> 40 dB reads as 20 dB lost, not 110): what is left is
        # error the op amplifies.
        ref = min([*ins, rounding, CLEAN_SNR_DB]) if ins else None
        growth = max(0.0, ref - out) if ref is not None and out is not None else None
        snr[layer.name] = out
        lw = layer.layerwise
        layer_snr = lw.snr_db if lw else None
        injected = layer_snr if lw else (rounding if layer.scale else None)
        rows.append({
            "name": layer.name, "op": layer.op, "index": layer.index, "dtype": layer.dtype,
            "rmse_over_scale": rounded(lw.rmse_over_scale(layer.layerwise_scale), 4) if lw else None,
            "layer_snr_db": rounded(layer_snr, 2),
            "snr_db": rounded(out, 2), "cosine": rounded(layer.acc.cosine), "mse": rounded(layer.acc.mse, 9),
            "max_abs_err": rounded(layer.acc.max_abs, 6), "scale": layer.scale,
            "accumulated_rmse_over_scale": rounded(layer.acc.rmse_over_scale(layer.scale), 4),
            "rounding_snr_db": rounded(rounding, 2), "injected_snr_db": rounded(injected, 2),
            "growth_db": rounded(growth, 3), "inputs": list(layer.inputs),
        })
    basis = "injected" if any(r["injected_snr_db"] is not None for r in rows) else "growth"

    def error(r: dict) -> float:
        if basis == "growth":
            return r["growth_db"] or 0.0
        return 10 ** (-r["injected_snr_db"] / 10) if r["injected_snr_db"] is not None else 0.0

    total = sum(error(r) for r in rows)
    running = 0.0
    for r in rows:
        share = error(r) / total if total else 0.0
        running += share
        r["share"] = round(share, 6)
        r["cumulative_share"] = round(running, 6)
    ranked = sorted((r for r in rows if error(r) > 0), key=lambda r: -error(r))
    grown = sorted((r for r in rows if r["growth_db"]), key=lambda r: -r["growth_db"])
    layerwise = sorted((r for r in rows if r["rmse_over_scale"] is not None), key=lambda r: -r["rmse_over_scale"])
    first_bad = next((r["name"] for r in rows if r["snr_db"] is not None and r["snr_db"] < threshold_db), None)
    by_op: dict[str, dict] = {}
    for r in rows:
        entry = by_op.setdefault(r["op"], {"share": 0.0, "layers": 0})
        entry["share"] += r["share"]
        entry["layers"] += 1
    return {
        "layers": rows,
        "ranking": [r["name"] for r in ranked[:TOP]],
        "ranking_basis": basis,
        "share_by_op": {op: {"share": round(v["share"], 4), "layers": v["layers"]}
                        for op, v in sorted(by_op.items(), key=lambda kv: -kv[1]["share"])},
        "growth_ranking": [r["name"] for r in grown[:TOP]],
        "layerwise_ranking": [r["name"] for r in layerwise[:TOP]],
        "first_bad_layer": first_bad,
        "threshold": {"metric": "snr_db", "below": threshold_db,
                      "meaning": "accumulated SNR of the op output against the float model, in dB"},
    }


__all__ = ["CLEAN_SNR_DB", "FIRST_BAD_SNR_DB", "Layer", "summarize_layers"]

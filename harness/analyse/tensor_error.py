"""Error statistics of a quantized model against its float twin, and the per-layer picture they add up to.

`ErrorStats` pools a tensor pair over images; `summarize_layers` turns the per-op statistics into rows in
execution order, rankings of where error is injected and where it grows, and the first bad layer (the
measures are explained in harness.analyse.quant_error.compare).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SNR_CAP_DB = 150.0  # reported for a tensor with no error at all (a float32 rounding floor is ~140 dB)
CLEAN_SNR_DB = 60.0  # growth is measured from at most this: an error 60 dB under the signal counts as none
FIRST_BAD_SNR_DB = 20.0  # default threshold: accumulated SNR below this marks where the error starts
TOP = 10


@dataclass
class ErrorStats:
    """Running sums over float (reference) and quantized tensors, pooled over images."""

    n: int = 0
    sum_f2: float = 0.0
    sum_q2: float = 0.0
    sum_fq: float = 0.0
    sum_e2: float = 0.0
    max_abs: float = 0.0

    def update(self, f: np.ndarray, q: np.ndarray) -> None:
        f = np.asarray(f, np.float64).ravel()
        q = np.asarray(q, np.float64).ravel()
        if f.shape != q.shape:
            raise ValueError(f"shapes differ: {f.shape} vs {q.shape}")
        e = q - f
        self.n += f.size
        self.sum_f2 += float(f @ f)
        self.sum_q2 += float(q @ q)
        self.sum_fq += float(f @ q)
        self.sum_e2 += float(e @ e)
        if e.size:
            self.max_abs = max(self.max_abs, float(np.abs(e).max()))

    @property
    def mse(self) -> float | None:
        return self.sum_e2 / self.n if self.n else None

    @property
    def snr_db(self) -> float | None:
        """10 log10(signal power / error power); None where the float tensor is all zeros but the other is not."""
        if not self.n:
            return None
        if self.sum_e2 == 0.0:
            return SNR_CAP_DB
        if self.sum_f2 == 0.0:
            return None
        return min(SNR_CAP_DB, 10.0 * math.log10(self.sum_f2 / self.sum_e2))

    @property
    def cosine(self) -> float | None:
        if self.sum_f2 == 0.0 or self.sum_q2 == 0.0:
            return 1.0 if self.n and self.sum_f2 == self.sum_q2 == 0.0 else None
        return self.sum_fq / math.sqrt(self.sum_f2 * self.sum_q2)

    def rounding_snr_db(self, scale: float | None) -> float:
        """The SNR rounding alone to steps of `scale` would give this signal (noise scale^2/12); the cap in float."""
        if not scale or not self.n or self.sum_f2 == 0.0:
            return SNR_CAP_DB
        return min(SNR_CAP_DB, 10.0 * math.log10((self.sum_f2 / self.n) / (scale * scale / 12.0)))

    def rmse_over_scale(self, scale: float | None) -> float | None:
        """Root mean square error in quantization steps: about 0.29 (1/sqrt(12)) is ideal rounding."""
        return math.sqrt(self.mse) / scale if scale and self.mse is not None else None

    def to_dict(self) -> dict:
        return {"cosine": _r(self.cosine), "mse": _r(self.mse, 9), "snr_db": _r(self.snr_db, 2),
                "max_abs_err": _r(self.max_abs, 6)}


def _r(v: float | None, digits: int = 6) -> float | None:
    return None if v is None else round(v, digits)


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
    snr = {input_stats[0]: input_stats[1].snr_db}
    rows = []
    for layer in layers:
        out = layer.acc.snr_db
        rounding = layer.acc.rounding_snr_db(layer.scale)
        ins = [snr[n] for n in layer.inputs if snr.get(n) is not None]
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
            "rmse_over_scale": _r(lw.rmse_over_scale(layer.layerwise_scale), 4) if lw else None,
            "layer_snr_db": _r(layer_snr, 2),
            "snr_db": _r(out, 2), "cosine": _r(layer.acc.cosine), "mse": _r(layer.acc.mse, 9),
            "max_abs_err": _r(layer.acc.max_abs, 6), "scale": layer.scale,
            "accumulated_rmse_over_scale": _r(layer.acc.rmse_over_scale(layer.scale), 4),
            "rounding_snr_db": _r(rounding, 2), "injected_snr_db": _r(injected, 2),
            "growth_db": _r(growth, 3), "inputs": list(layer.inputs),
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


__all__ = ["CLEAN_SNR_DB", "FIRST_BAD_SNR_DB", "SNR_CAP_DB", "TOP", "ErrorStats", "Layer", "summarize_layers"]

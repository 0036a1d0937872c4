"""The report's plots, rendered with matplotlib's Agg backend to PNG bytes (embedded in the HTML page)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from harness.records.selection import latest_benches, model_name
from harness.records.types import PhaseName, RunRecord


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def ap_vs_latency(points: pd.DataFrame) -> bytes | None:
    """AP against invoke p50, one marker per model and host (hosts by marker, models by colour)."""
    if points.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^v<>pPX*h"
    hosts = sorted(points["host"].unique())
    colours = {m: f"C{i % 10}" for i, m in enumerate(sorted(points["model"].unique()))}
    for _, r in points.iterrows():
        ax.scatter(r["invoke p50 ms"], r["AP"], s=60, color=colours[r["model"]],
                   marker=markers[hosts.index(r["host"]) % len(markers)], edgecolor="black", linewidth=0.5)
    for m, c in colours.items():
        ax.scatter([], [], color=c, label=m)
    for i, h in enumerate(hosts):
        board = points.loc[points["host"] == h, "board"].iloc[0]
        ax.scatter([], [], color="grey", marker=markers[i % len(markers)], label=f"host {h} ({board})")
    ax.set_xscale("log")
    ax.set_xlim(*latency_limits(points["invoke p50 ms"]))
    ax.set_ylim(*ap_limits(points["AP"]))
    ax.set_xlabel("invoke p50 (ms, log scale)")
    ax.set_ylabel("COCO AP (points)")
    ax.set_title("Accuracy vs latency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def ap_limits(ap: Sequence[float]) -> tuple[float, float]:
    """AP axis from 0 (AP is a ratio: 0 is no detection at all) to a tenth above the best, at least 5 points of
    headroom: one point, or a few close ones, must not be drawn as a spread across a 0.03-point wide axis."""
    top = max((float(a) for a in ap if a == a), default=0.0)
    return 0.0, min(100.0, max(top * 1.1, top + 5.0))


def latency_limits(ms: Sequence[float]) -> tuple[float, float]:
    """A log latency axis padded by a fixed factor: [fastest / 2, slowest * 2], so one point sits mid-axis."""
    values = [float(m) for m in ms if m == m and m > 0]
    if not values:
        return 0.1, 10.0
    return min(values) / 2.0, max(values) * 2.0


def latency_distributions(records: Sequence[RunRecord], phase: PhaseName = "model_only") -> bytes | None:
    """Box plots of the raw samples of each model on each host: the spread, not just the median."""
    benches = sorted(latest_benches(records), key=lambda r: (model_name(r), r["host"]["fingerprint"]))
    data = [(f"{model_name(r)}\n{r['host']['fingerprint']} t={r.get('settings', {}).get('threads') or 'def'}",
             [s * 1e3 for s in r["phases"][phase]["samples_s"]]) for r in benches
            if r["phases"][phase].get("samples_s")]
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(data) + 2), 4.5))
    ax.boxplot([d for _, d in data], showfliers=True)
    ax.set_xticks(range(1, len(data) + 1), [label for label, _ in data], rotation=45, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel(f"{'invoke' if phase == 'model_only' else 'end-to-end'} latency (ms, log scale)")
    ax.set_title("Latency distribution per model and host (raw samples)")
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)


def per_class_selection(per_class: pd.DataFrame, quantized: str, worst: int = 12,
                        best: int = 8) -> pd.DataFrame:
    """The classes a per-class chart shows for one pair, in the order drawn: the `worst` largest drops and
    the `best` largest gains among classes with enough ground truth (the table's "few boxes" empty); when
    there are no more than worst + best of those, all of them, then classes with few boxes (worst first)
    up to that many. Every class stays in tables/quant_per_class.csv."""
    df = per_class[(per_class["quantized"] == quantized) & per_class["ΔAP"].notna()]
    few = df["few boxes"].astype(str) != "" if "few boxes" in df.columns else pd.Series(False, index=df.index)
    ranked, rare = df[~few].sort_values("ΔAP", kind="stable"), df[few].sort_values("ΔAP", kind="stable")
    limit = worst + best
    if len(ranked) > limit:
        return pd.concat([ranked.head(worst), ranked.tail(best)])
    return pd.concat([ranked, rare.head(limit - len(ranked))])


def per_class_delta(per_class: pd.DataFrame, quantized: str, worst: int = 12, best: int = 8) -> bytes | None:
    """ΔAP per class (quantized - float) for one pair as horizontal bars with readable labels: the classes
    `per_class_selection` picks (largest drops on top), classes with few ground-truth boxes in grey."""
    df = per_class_selection(per_class, quantized, worst, best)
    if df.empty:
        return None
    total = int(((per_class["quantized"] == quantized) & per_class["ΔAP"].notna()).sum())
    few = (df["few boxes"].astype(str) != "") if "few boxes" in df.columns else pd.Series(False, index=df.index)
    fig, ax = plt.subplots(figsize=(6.5, 0.26 * len(df) + 1.3))
    colours = ["#b8bec6" if f else "#c0392b" if d < 0 else "#27ae60" for d, f in zip(df["ΔAP"], few, strict=True)]
    ax.barh(range(len(df)), df["ΔAP"], color=colours)
    ax.set_yticks(range(len(df)), df["class"], fontsize=9)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("ΔAP (points, quantized - float)")
    shown = f"{len(df)} of {total} classes" + (f": the {worst} worst and the {best} best"
                                                 if len(df) == worst + best and not few.any() else "")
    ax.set_title(f"{quantized} vs {df['float'].iloc[0]}\n{shown}" + ("; grey: few boxes" if few.any() else ""),
                 fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def tradeoff(rows: pd.DataFrame, max_drop: float | None, with_cost: bool = False) -> bytes | None:
    """One quantization search: ΔAP against p50 (and against the cost model's figure, for NPU targets),
    marker area by file size, the Pareto front as a staircase, the chosen plan ringed, the float32 and
    int8 references labelled, and the budget (-max drop) as a dashed line."""
    axes_of = [("p50 ms", "front (latency)", "model-only p50 on the search's host (ms, log scale)")]
    if with_cost and rows["cost"].notna().any():
        axes_of.append(("cost", "front (cost)", "cost model figure (lower is cheaper)"))
    measured = rows[(rows["status"] == "measured") & rows["ΔAP"].notna()]
    if measured.empty or measured["p50 ms"].isna().all():
        return None
    fig, axes = plt.subplots(1, len(axes_of), figsize=(7.5 * len(axes_of), 5), squeeze=False)
    biggest = float(measured["size MB"].max() or 1.0) if measured["size MB"].notna().any() else 1.0
    for ax, (x, front_col, xlabel) in zip(axes[0], axes_of, strict=True):
        pts = measured[measured[x].notna()]
        sizes = [40 + 400 * (s / biggest) if s == s and s is not None else 40 for s in pts["size MB"]]
        colours = ["#27ae60" if m == "yes" else "#7f8c8d" for m in pts["meets budget"]]
        ax.scatter(pts[x], pts["ΔAP"], s=sizes, c=colours, alpha=0.6, edgecolor="black", linewidth=0.5)
        front = pts[pts[front_col] == "yes"].sort_values(x)
        ax.step(front[x], front["ΔAP"], where="post", color="#2c6fbb", linewidth=1.5, marker="o",
                markersize=4, label="Pareto front")
        for _, r in pts.iterrows():
            ax.annotate(str(r["candidate"]), (r[x], r["ΔAP"]), fontsize=6, xytext=(4, 3),
                        textcoords="offset points")
        chosen = pts[pts["role"].str.contains("chosen")]
        ax.scatter(chosen[x], chosen["ΔAP"], s=500, facecolors="none", edgecolors="#c0392b", linewidth=2,
                   label="chosen plan")
        for ref, marker in (("float32 reference", "D"), ("int8 reference", "s")):
            r = pts[pts["role"].str.contains(ref)]
            ax.scatter(r[x], r["ΔAP"], s=60, marker=marker, color="black", label=ref.replace(" reference", ""))
        if max_drop is not None:
            ax.axhline(-float(max_drop), color="#c0392b", linestyle="--", linewidth=0.8,
                       label=f"budget: drop {max_drop:g} points")
        if x == "p50 ms":
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ΔAP (points, candidate - float)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", markerscale=0.6)
    fig.suptitle(f"{rows['search'].iloc[0]}: accuracy against speed (marker area: file size; green: within "
                 "budget)", fontsize=10)
    return _png(fig)

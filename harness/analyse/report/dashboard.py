"""Export for CI dashboards: github-action-benchmark's `customSmallerIsBetter` / `customBiggerIsBetter` JSON.

The action takes a list of {name, unit, value, range?, extra?}; one file per direction, since one chart
series must not mix "lower is better" latencies with "higher is better" accuracies. Bencher takes one file in its
metric format (BMF), each benchmark with its measures. The history of every series with its change points is
`harness report --history` (harness.analyse.report.history_site).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.records.selection import latest_benches, latest_evals, model_name
from harness.records.types import PhaseName, RunRecord

_PHASES: tuple[tuple[PhaseName, str], ...] = (("model_only", "invoke"), ("end_to_end", "end-to-end"))


def smaller_is_better(records: Sequence[RunRecord]) -> list[dict]:
    """Invoke and end-to-end p50 (ms) per model, host and settings; p90/p99 and n ride along in `extra`."""
    out = []
    for rec in sorted(latest_benches(records), key=lambda r: (model_name(r), r["host"]["fingerprint"])):
        s = rec.get("settings", {})
        where = (f"{rec['host']['fingerprint']}, threads {s.get('threads') or 'default'}, "
                 f"delegate {s.get('delegate') or 'none'}")
        for phase, label in _PHASES:
            st = rec["phases"][phase]["stats"]
            out.append({
                "name": f"{model_name(rec)} {label} p50 ({where})", "unit": "ms",
                "value": round(st["p50_s"] * 1e3, 3),
                "range": f"± {st['std_s'] * 1e3:.3f}",
                "extra": f"p90 {st['p90_s'] * 1e3:.2f} ms, p99 {st['p99_s'] * 1e3:.2f} ms, n {st['count']}, "
                         f"host {rec['host'].get('board') or rec['host'].get('cpu_model')}",
            })
    return out


def bigger_is_better(records: Sequence[RunRecord]) -> list[dict]:
    """COCO AP and AP50 (points) per model, runtime, protocol and image set."""
    out = []
    for rec in sorted(latest_evals(records), key=model_name):
        ds = rec.get("dataset", {})
        where = f"{rec.get('backend', {}).get('runtime')}, {rec.get('protocol', {}).get('name')}, " \
                f"{ds.get('image_count')} images of {ds.get('split')}"
        for stat in ("AP", "AP50"):
            out.append({"name": f"{model_name(rec)} {stat} ({where})", "unit": "AP points",
                        "value": round(100.0 * rec["results"]["stats"][stat], 3),
                        "extra": f"host {rec['host']['fingerprint']}, created {rec.get('created')}"})
    return out


def bencher_metrics(records: Sequence[RunRecord]) -> dict[str, dict[str, dict[str, float]]]:
    """Bencher Metric Format (BMF): {benchmark: {measure: {value, lower_value, upper_value}}}.

    Latency goes to Bencher's built-in `latency` measure, which is in nanoseconds (p50, with the p10-p90 band as
    lower and upper value); AP to an `ap` measure in points (Bencher creates a measure named by a new slug).
    """
    import numpy as np

    out: dict[str, dict[str, dict[str, float]]] = {}
    for rec in sorted(latest_benches(records), key=lambda r: (model_name(r), r["host"]["fingerprint"])):
        s = rec.get("settings", {})
        where = f"{rec['host']['fingerprint']}, threads {s.get('threads') or 'default'}, " \
                f"delegate {s.get('delegate') or 'none'}"
        for phase, label in _PHASES:
            samples = np.asarray(rec["phases"][phase]["samples_s"], float)
            p50 = rec["phases"][phase]["stats"]["p50_s"]
            lo, hi = (float(v) for v in np.percentile(samples, [10, 90])) if samples.size else (p50, p50)
            out[f"{model_name(rec)} {label} ({where})"] = {
                "latency": {"value": round(p50 * 1e9), "lower_value": round(lo * 1e9), "upper_value": round(hi * 1e9)}}
    for entry in bigger_is_better(records):
        out.setdefault(entry["name"].replace(" AP50 (", " (").replace(" AP (", " ("), {})[
            "ap50" if " AP50 (" in entry["name"] else "ap"] = {"value": entry["value"]}
    return out

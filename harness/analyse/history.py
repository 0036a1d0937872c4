"""Series over commits: each host x model x settings latency series and each AP series, their change points,
and the regression (if any) still in force at the newest run.

The dashboard draws these and `harness check --change-points` gates on them, so both read one definition of a
series, of commit order, and of "in force": the newest runs sit after a change point that made the series
more than R worse (slower, or lower in AP) than the level before it, and no later change point undid it.
An acknowledgement in the store (`harness store ack`) accepts the series as it was at its commit: only change
points after that commit can fail the gate again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.analyse.change_points import MAX_PVALUE, ChangePoint, detect
from harness.records.provenance import UNKNOWN, of_record
from harness.records.selection import bench_key, eval_key, model_name, of_kind
from harness.records.types import BenchRecord, EvalRecord, PhaseName, RunRecord


@dataclass(frozen=True)
class Point:
    """One run: its value, the band around it (p10-p90 of its samples; equal to the value for an AP) and
    where it came from."""

    value: float
    lo: float
    hi: float
    commit: str
    commit_time: str
    created: str
    branch: str
    run_url: str
    runner: str


@dataclass(frozen=True)
class Series:
    id: str
    metric: str  # "latency" (ms, lower is better) or "ap" (points, higher is better)
    label: str
    host: str
    model: str
    settings: str
    points: tuple[Point, ...]

    @property
    def unit(self) -> str:
        return "ms" if self.metric == "latency" else "AP points"

    def worse(self, before: float, after: float) -> float:
        """How many times worse `after` is than `before`: after / before for a latency, before / after for AP."""
        if self.metric == "latency":
            return after / before if before > 0 else np.inf
        return before / after if after > 0 else np.inf


@dataclass(frozen=True)
class Regression:
    """A change point whose worsening is still in force at the newest run."""

    series: Series
    change: ChangePoint
    ratio: float  # newest segment's level against the level before the change (how much worse it is now)
    level_before: float
    level_now: float
    commit_before: str = field(init=False)
    commit_after: str = field(init=False)

    def __post_init__(self) -> None:
        pts = self.series.points
        object.__setattr__(self, "commit_before", pts[self.change.index - 1].commit)
        object.__setattr__(self, "commit_after", pts[self.change.index].commit)


def series_id(metric: str, key: Sequence[object]) -> str:
    """A short stable id of a series, for acknowledgements and links (the key itself is long)."""
    return hashlib.sha256(json.dumps([metric, *map(str, key)]).encode()).hexdigest()[:10]


def _point(rec: RunRecord, value: float, lo: float, hi: float) -> Point:
    prov = of_record(rec)
    code, ci = prov["code"], prov["ci"]
    assert isinstance(code, dict) and isinstance(ci, dict)  # of_record returns these as dicts
    return Point(value, lo, hi, str(code.get("commit") or UNKNOWN), str(code.get("commit_time") or UNKNOWN),
                 str(rec.get("created") or ""), str(code.get("branch") or UNKNOWN),
                 str(ci.get("run_url") or UNKNOWN), str(ci.get("runner") or UNKNOWN))


def commit_order(p: Point) -> tuple[str, str]:
    """Commits in the order they were made (commit time), each commit's runs in the order they ran; a run
    whose commit time is unknown sorts by when it ran."""
    return (p.created if p.commit_time == UNKNOWN else p.commit_time, p.created)


def _latency_point(rec: BenchRecord, phase: PhaseName) -> Point:
    samples = np.asarray(rec["phases"][phase]["samples_s"], float) * 1e3
    if samples.size:
        lo, mid, hi = (float(v) for v in np.percentile(samples, [10, 50, 90]))
    else:
        mid = lo = hi = rec["phases"][phase]["stats"]["p50_s"] * 1e3
    return _point(rec, mid, lo, hi)


def build(records: Iterable[RunRecord], phase: PhaseName = "model_only") -> list[Series]:
    """Every latency series (bench records: model, host fingerprint, threads, delegate, runtime) and every
    AP series (eval records: model, runtime, protocol, image set), points in commit order."""
    out = []
    records = list(records)
    groups: dict[tuple, list[Point]] = {}
    meta: dict[tuple, tuple[str, str, str, str]] = {}
    for b in of_kind(records, "bench"):
        key = ("latency", *bench_key(b))
        groups.setdefault(key, []).append(_latency_point(b, phase))
        s = b["settings"]
        meta[key] = (model_name(b), _host(b),
                     f"threads {s.get('threads') or 'default'}, delegate {s.get('delegate') or 'none'}, "
                     f"{s.get('runtime') or 'runtime ?'}", f"{phase} p50")
    for e in of_kind(records, "eval"):
        key = ("ap", *eval_key(e))
        ap = 100.0 * float(e["results"]["stats"]["AP"])
        groups.setdefault(key, []).append(_point(e, ap, ap, ap))
        meta[key] = _eval_meta(e)
    for key, points in groups.items():
        model, host, settings, what = meta[key]
        metric = str(key[0])
        out.append(Series(series_id(metric, key[1:]), metric, f"{model} {what} on {host} ({settings})", host, model,
                          settings, tuple(sorted(points, key=commit_order))))
    return sorted(out, key=lambda s: (s.metric != "latency", s.model, s.host, s.settings))


def _eval_meta(e: EvalRecord) -> tuple[str, str, str, str]:
    ds = e["dataset"]
    settings = (f"{e['backend'].get('runtime')}, {e.get('protocol', {}).get('name')}, {ds.get('image_count')} images "
                f"of {ds.get('split')}")
    return model_name(e), _host(e), settings, "AP"


def _host(rec: RunRecord) -> str:
    """The host fingerprint (what a series is keyed by), with the board or CPU a person knows it by."""
    h = rec["host"]
    name = h.get("board") or h.get("hostname") or h.get("cpu_model")
    return f"{h['fingerprint']} ({name})" if name else h["fingerprint"]


def change_points(series: Series, max_pvalue: float = MAX_PVALUE) -> list[ChangePoint]:
    return detect([p.value for p in series.points], max_pvalue=max_pvalue)


def in_force(series: Series, changes: Sequence[ChangePoint], max_ratio: float,
             acknowledged: Iterable[str] = ()) -> Regression | None:
    """The earliest change point that made `series` worse and after which the newest segment is still more than
    `max_ratio` worse than the level before it; change points at or before an acknowledged commit do not count.
    """
    acked = set(acknowledged)
    after = max((i for i, p in enumerate(series.points) if p.commit in acked), default=-1)
    values = np.array([p.value for p in series.points])
    bounds = [0, *(c.index for c in changes), len(values)]
    now = float(np.median(values[bounds[-2]:]))
    for c in changes:
        if c.index <= after:
            continue
        if series.worse(c.before, c.after) > 1 and series.worse(c.before, now) > max_ratio:
            return Regression(series, c, series.worse(c.before, now), c.before, now)
    return None


def acknowledgements(acks: Iterable[Mapping[str, object]]) -> dict[str, list[str]]:
    """{series id: acknowledged commits} from the store's ack rows."""
    out: dict[str, list[str]] = {}
    for a in acks:
        out.setdefault(str(a["series"]), []).append(str(a["commit"]))
    return out

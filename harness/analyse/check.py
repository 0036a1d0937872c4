"""CI gates over run records: accuracy against a baseline, the int8 drop, latency regressions.

Each gate returns findings (pass or fail, with a message naming the model, host and numbers), so the
CLI can print every failure at once rather than stopping at the first. A requested gate with nothing to
check is an input error, not a pass: a CI step that silently checks nothing guards nothing.
Latency has two gates under --max-slowdown. An interleaved A/B record (harness bench --baseline) fails
only when its ratio's interval lies wholly above the allowed ratio. The series gate compares the newest
plain bench with the median of the runs before it on one host, and fails only when the slowdown exceeds
the allowed ratio, the host's run-to-run noise band and a Mann-Whitney U test. benchmarks/gate_noise.py
measures the false-alarm rates of both (docs/latency.md renders its artifact). With --change-points the
series gate is replaced by change points over each whole series, latency and AP (harness.analyse.history):
a series fails while a regression is in force, until a later change undoes it or a team acknowledges it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.records.selection import ab_series, bench_series, latest_evals, model_name, quant_pairs
from harness.records.tool_types import QuantSearchRecord
from harness.records.types import EvalRecord, PhaseName, RunRecord


@dataclass(frozen=True)
class Finding:
    gate: str
    subject: str
    passed: bool
    message: str
    warning: bool = False  # passed only because an inconclusive verdict was allowed to pass


def mann_whitney_greater(new: np.ndarray, old: np.ndarray) -> float:
    """One-sided p-value that `new` tends to be larger than `old` (normal approximation, tie-corrected).

    Timing samples are skewed and have outliers, so a rank test is the right tool; with the 20+ samples
    per phase a bench keeps, the normal approximation is accurate.
    """
    new, old = np.asarray(new, float), np.asarray(old, float)
    n1, n2 = new.size, old.size
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples must be non-empty")
    both = np.concatenate([new, old])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(both.size)
    sorted_vals = both[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float(((counts**3) - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if var <= 0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)  # continuity correction
    return 0.5 * math.erfc(z / math.sqrt(2))


def _ap(rec: EvalRecord) -> float:
    return 100.0 * float(rec["results"]["stats"]["AP"])


def gate_baseline(records: Sequence[RunRecord], tolerance: float, expected: dict[str, float], allow_unlike: bool
                  ) -> list[Finding]:
    """|AP - reference| <= tolerance (AP points). The reference is `expected[model]` where given (a subset run
    has its own known answer), else the card's published baseline when the run is like for like."""
    out = []
    for rec in latest_evals(records):
        name = model_name(rec)
        cmp = rec.get("comparison") or {}
        if name in expected:
            ref, what = expected[name], "expected"
        elif (base := cmp.get("baseline")) and (cmp.get("like_for_like") or allow_unlike):
            ref, what = float(base["ap"]), "published"
        else:
            continue
        ap = _ap(rec)
        ok = abs(ap - ref) <= tolerance
        out.append(Finding("baseline", name, ok,
                           f"{name}: AP {ap:.2f} vs {what} {ref:.2f} (|diff| {abs(ap - ref):.2f}, "
                           f"tolerance {tolerance:g})"))
    missing = sorted(set(expected) - {model_name(r) for r in latest_evals(records)})
    out.extend(Finding("baseline", m, False, f"{m}: no eval record to check against expected AP {expected[m]:g}")
               for m in missing)
    return out


def gate_quant_drop(records: Sequence[RunRecord], max_drop: float, confidence: float | None = None,
                    inconclusive: str = "pass", base_dir: Path | None = None, resamples: int = 1000) -> list[Finding]:
    """float AP - quantized AP <= max_drop (AP points), for each quantized eval with a float sibling.

    With `confidence`, the drop is the paired bootstrap interval over the images both scored (from the
    records' detection files): fail when it lies wholly above max_drop, pass when wholly below, and
    otherwise "inconclusive" (with the image count that would likely decide it), which passes with a
    warning or fails as `inconclusive` says.
    """
    if confidence is not None:
        return [_drop_with_confidence(f, q, max_drop, confidence, inconclusive, base_dir, resamples)
                for f, q in quant_pairs(latest_evals(records))]
    out = []
    for f, q in quant_pairs(latest_evals(records)):
        drop = _ap(f) - _ap(q)
        ok = drop <= max_drop
        out.append(Finding("quant-drop", model_name(q), ok,
                           f"{model_name(q)}: AP {_ap(q):.2f} vs float {model_name(f)} {_ap(f):.2f}, "
                           f"drop {drop:.2f} (allowed {max_drop:g})"))
    return out


def _drop_with_confidence(f: EvalRecord, q: EvalRecord, max_drop: float, confidence: float, inconclusive: str,
                          base_dir: Path | None,
                          resamples: int, gate: str = "quant-drop", allowed: str | None = None,
                          limit: str | None = None) -> Finding:
    from harness.analyse.paired import paired_interval
    from harness.scoring.verdicts import quant_drop_verdict

    allowed, limit = allowed or f"allowed {max_drop:g}", limit or f"{max_drop:g}"
    head = f"{model_name(q)}: AP {_ap(q):.2f} vs float {model_name(f)} {_ap(f):.2f}, drop {_ap(f) - _ap(q):.2f}"
    paired = paired_interval(f, q, base_dir, resamples=resamples, level=confidence)
    if paired.delta is None:
        return Finding(gate, model_name(q), inconclusive == "pass",
                       f"{head} ({allowed}): inconclusive, no interval ({paired.reason})", warning=True)
    v = quant_drop_verdict(paired.delta, max_drop, confidence)
    msg = (f"{head} [{v['drop_lo']:.2f}, {v['drop_hi']:.2f}] ({100 * v['confidence']:g}% paired bootstrap over "
           f"{v['images']} images; {allowed}): {v['verdict']}")
    if v["verdict"] == "fail":
        msg += f" (the drop exceeds {limit} with {100 * v['confidence']:g}% confidence)"
    elif v["verdict"] == "pass":
        msg += f" (the drop is below {limit} with {100 * v['confidence']:g}% confidence)"
    else:
        need = v["images_needed"]
        msg += (f"; about {need} images would likely decide it" if need else "; the estimate sits on the limit")
        return Finding(gate, model_name(q), inconclusive == "pass", msg, warning=True)
    return Finding(gate, model_name(q), v["verdict"] == "pass", msg)


RATIO_SLACK = 1e-9  # AP points: 9.999 is 99% of 10.1, yet 100 x 0.09999 < 0.99 x (100 x 0.101) in floats


def gate_relative_accuracy(records: Sequence[RunRecord], min_ratio: float, confidence: float | None = None,
                           inconclusive: str = "pass", base_dir: Path | None = None, resamples: int = 1000
                           ) -> list[Finding]:
    """quantized AP >= min_ratio x float AP (MLPerf's "99% of FP32" is 0.99): each quantized eval against
    the float sibling gate_quant_drop pairs it with, and the plan each quant_search record chose (or, where
    none met its budget, the closest one) against the search's float model.

    With `confidence`, the rule becomes a drop limit of (1 - min_ratio) x float AP, gated on the paired
    interval as --max-quant-drop is. The float AP's own sampling error is left out of the limit: it moves
    the limit by (1 - min_ratio) x its standard error, a hundredth of it at 0.99. A search record keeps no
    detections, so its plan is judged on point values, and the message says so.
    """
    from harness.records.selection import latest_searches

    out = []
    for f, q in quant_pairs(latest_evals(records)):
        af, aq = _ap(f), _ap(q)
        if confidence is not None:
            limit = max(0.0, (1.0 - min_ratio) * af)
            allowed = f"allowed {limit:.3f} = {100 * (1 - min_ratio):.3g}% of float AP, for a ratio >= {min_ratio:g}"
            out.append(_drop_with_confidence(f, q, limit, confidence, inconclusive, base_dir, resamples,
                                             gate="relative-accuracy", allowed=allowed, limit=f"{limit:.3f}"))
            continue
        out.append(_ratio_finding(model_name(q), f"{model_name(q)}: AP {aq:.3f} vs float {model_name(f)} {af:.3f}",
                                  aq, af, min_ratio))
    for rec in latest_searches(records):
        out.append(_search_ratio(rec, min_ratio, confidence))
    return out


def _ratio_finding(subject: str, head: str, ap: float, float_ap: float, min_ratio: float, note: str = "") -> Finding:
    """AP to 3 decimals in `head`: at the limit, 28.215 against "AP >= 28.215" must not read as 28.21."""
    ratio = f"{ap / float_ap:.4f}" if float_ap > 0 else "undefined (float AP 0)"
    ok = ap >= min_ratio * float_ap - RATIO_SLACK
    return Finding("relative-accuracy", subject, ok,
                   f"{head}, ratio {ratio} (min {min_ratio:g}: AP >= {min_ratio * float_ap:.3f}){note}")


def _search_ratio(rec: QuantSearchRecord, min_ratio: float, confidence: float | None) -> Finding:
    from harness.records.selection import search_subject

    subject = f"{search_subject(rec)} search for {rec.get('target')}"
    by_name = {c.get("name"): c for c in rec["candidates"]}
    which = "chosen" if rec.get("chosen") else "closest (none met the search's budget)"
    plan = by_name.get(rec.get("chosen") or rec.get("closest"))
    float_ap = rec["float"].get("ap")
    ap = None if plan is None else plan.get("ap")
    if plan is None or ap is None or float_ap is None:
        return Finding("relative-accuracy", subject, False,
                       f"{subject}: no measured plan to check (chosen {rec.get('chosen')}, closest "
                       f"{rec.get('closest')})")
    note = " (point values: a search record keeps no detections to resample)" if confidence is not None else ""
    ap, fap = float(ap), float(float_ap)  # AP points, as the search keeps them
    return _ratio_finding(subject, f"{subject}: {which} plan {plan.get('name')} AP {ap:.3f} vs float {fap:.3f}",
                          ap, fap, min_ratio, note)


HISTORY = 10  # the series gate's baseline: the median p50 of this many runs before the newest (docs/latency.md)
NOISE_Z = 3.0  # ... and a slowdown must also leave the band of NOISE_Z robust deviations of their p50s


def gate_latency(records: Sequence[RunRecord], max_ratio: float, alpha: float, phase: PhaseName = "model_only",
                 history: int = HISTORY, noise_z: float = NOISE_Z) -> list[Finding]:
    """Newest bench vs the last `history` runs before it on the same host fingerprint and settings.

    The reference is the median of their p50s, not the one run before: a single earlier run drawn on a
    fast or slow spell of a shared runner moves the ratio by as much as a real regression. The newest
    run fails only when all three hold: p50 / reference > `max_ratio`; the ratio leaves the host's own
    run-to-run noise band, 1 + noise_z * 1.4826 * MAD(p50s) / reference (with 3 or more earlier runs;
    fewer give no band); and a one-sided Mann-Whitney U test of its samples against the earlier runs'
    pooled samples is significant at `alpha`.
    """
    out = []
    for key, runs in bench_series(records).items():
        if len(runs) < 2:
            continue
        prior, new = runs[-1 - history:-1], runs[-1]
        olds = [np.asarray(r["phases"][phase]["samples_s"], float) for r in prior]
        olds = [a for a in olds if a.size]
        b = np.asarray(new["phases"][phase]["samples_s"], float)
        if not olds or b.size == 0:
            continue
        p50s = np.array([np.median(a) for a in olds])
        ref = float(np.median(p50s))
        ratio = float(np.median(b)) / ref
        band = noise_z * 1.4826 * float(np.median(np.abs(p50s - ref))) / ref if len(p50s) >= 3 else 0.0
        p = mann_whitney_greater(b, np.concatenate(olds))
        ok = not (ratio > max_ratio and ratio > 1 + band and p < alpha)
        verdict = "slower" if not ok else ("within noise" if ratio > max_ratio else "ok")
        out.append(Finding("latency", f"{key[0]}@{key[1]}", ok,
                           f"{key[0]} on host {key[1]} ({phase}): p50 {np.median(b) * 1e3:.2f} ms vs "
                           f"{ref * 1e3:.2f} ms (median p50 of the last {len(p50s)} runs), ratio {ratio:.3f} "
                           f"(allowed {max_ratio:g}, noise band {1 + band:.3f}), p={p:.2g} (alpha {alpha:g}): "
                           f"{verdict}"))
    return out


def gate_ab(records: Sequence[RunRecord], max_ratio: float) -> list[Finding]:
    """Interleaved A/B records: fail only when the lower bound of the candidate/baseline p50 ratio's interval
    is above `max_ratio`, i.e. the candidate is slower by more than allowed with the record's confidence."""
    out = []
    for key, runs in ab_series(records).items():
        rec = runs[-1]
        r = rec["ratios"].get("candidate/baseline")
        if r is None:
            continue  # a reference-only run: nothing to gate
        (cand, base), ok = (key[0][0], key[1][0]), not r["lo"] > max_ratio
        where = "" if cand != base else " (one model, two settings)"
        out.append(Finding("ab-latency", f"{cand} vs {base}@{key[2]}", ok,
                           f"{cand} vs {base}{where} on host {key[2]}: p50 ratio {r['ratio']:.3f} "
                           f"[{r['lo']:.3f}, {r['hi']:.3f}] ({100 * r['level']:g}%, {r['blocks']} interleaved blocks; "
                           f"allowed {max_ratio:g}): {'slower' if not ok else 'ok'}"))
    return out


def gate_change_points(records: Sequence[RunRecord], max_ratio: float, acks: Iterable[Mapping[str, object]] = (),
                       store: str = "STORE") -> list[Finding]:
    """Each latency and AP series with 2 x MIN_SIZE runs or more: fail while a change point that made it more than
    `max_ratio` worse is in force (harness.analyse.history.in_force); the message names the commit range where the
    regression began and the command that acknowledges it."""
    from harness.analyse.change_points import MIN_SIZE
    from harness.analyse.history import acknowledgements, build, change_points, in_force

    acked = acknowledgements(acks)
    out = []
    for s in build(records):
        if len(s.points) < 2 * MIN_SIZE:
            continue
        changes = change_points(s)
        reg = in_force(s, changes, max_ratio, acked.get(s.id, ()))
        head = f"{s.label} [series {s.id}], {len(s.points)} runs, {len(changes)} change point(s)"
        if reg is None:
            out.append(Finding("change-points", f"{s.model}@{s.host}", True,
                               f"{head}: no regression beyond {max_ratio:g} in force"))
            continue
        c, worse = reg.change, "slower" if s.metric == "latency" else "lower"
        out.append(Finding("change-points", f"{s.model}@{s.host}", False,
                           f"{head}: {reg.level_before:.4g} -> {reg.level_now:.4g} {s.unit}, {reg.ratio:.3f}x {worse} "
                           f"(allowed {max_ratio:g}) since commits {reg.commit_before[:12]}..{reg.commit_after[:12]} "
                           f"(run {c.index + 1} of {len(s.points)}, p={c.pvalue:.2g}); acknowledge it with `harness "
                           f"store ack {store} {s.id} {s.points[-1].commit[:12]}`"))
    return out


def gate_slowdown(records: Sequence[RunRecord], max_ratio: float, alpha: float, history: int = HISTORY,
                  change_points: bool = False, acks: Iterable[Mapping[str, object]] = (), store: str = "STORE"
                  ) -> list[Finding]:
    """--max-slowdown: the A/B gate on ab_bench records, and on bench records the series gate or, with
    `change_points`, the change-point gate (which also covers AP series)."""
    if change_points:
        return gate_ab(records, max_ratio) + gate_change_points(records, max_ratio, acks, store)
    return gate_ab(records, max_ratio) + gate_latency(records, max_ratio, alpha, history=history)


def run_gates(records: Sequence[RunRecord], *, tolerance: float | None = None, expected: dict[str, float] | None = None,
              allow_unlike: bool = False, max_quant_drop: float | None = None, max_slowdown: float | None = None,
              alpha: float = 0.01, skip_missing: bool = False, confidence: float | None = None,
              inconclusive: str = "pass", base_dir: Path | None = None, resamples: int = 1000,
              min_relative_accuracy: float | None = None, history: int = HISTORY, change_points: bool = False,
              acks: Iterable[Mapping[str, object]] = (), store: str = "STORE") -> list[Finding]:
    """Run the requested gates; a requested gate that finds nothing to check raises HarnessError, or with
    `skip_missing` (a first run on a new host has no history yet) yields a passing "skipped" finding."""
    if tolerance is None and expected:
        raise HarnessError("--expect needs --ap-tolerance (how far from the expected AP is still a pass)")
    if change_points and max_slowdown is None:
        raise HarnessError("--change-points needs --max-slowdown R (how much worse a change may leave a series)")
    if tolerance is None and max_quant_drop is None and max_slowdown is None and min_relative_accuracy is None:
        raise HarnessError("name a gate: --ap-tolerance, --max-quant-drop, --min-relative-accuracy or --max-slowdown")
    if min_relative_accuracy is not None and not 0 < min_relative_accuracy <= 1:
        raise HarnessError("--min-relative-accuracy is a fraction of the float model's AP in (0, 1] (0.99: MLPerf's "
                           f"99% of FP32), got {min_relative_accuracy:g}")
    for name, value in (("--ap-tolerance", tolerance), ("--max-quant-drop", max_quant_drop)):
        if value is not None and value < 0:
            raise HarnessError(f"{name} must be >= 0, got {value:g}")
    if max_slowdown is not None and max_slowdown < 1:
        raise HarnessError(f"--max-slowdown is a ratio >= 1 (e.g. 1.1 for 10%), got {max_slowdown:g}")
    if history < 1:
        raise HarnessError(f"--history must be at least 1 (earlier runs to compare with), got {history}")
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if confidence is not None:
        if max_quant_drop is None and min_relative_accuracy is None:
            raise HarnessError("--confidence is for --max-quant-drop or --min-relative-accuracy (the paired "
                               "interval of the drop)")
        if not 0 < confidence < 1:
            raise HarnessError(f"--confidence must be between 0 and 1 (e.g. 0.95), got {confidence:g}")
        if resamples < 2:
            raise HarnessError(f"--ci-resamples must be at least 2 with --confidence, got {resamples}")
    if inconclusive not in ("pass", "fail"):
        raise HarnessError(f"--inconclusive is pass or fail, got {inconclusive!r}")
    findings: list[Finding] = []
    requested: list[tuple[str, Callable[[], list[Finding]], str]] = []
    if tolerance is not None:
        requested.append(("--ap-tolerance", partial(gate_baseline, records, tolerance, expected or {}, allow_unlike),
                          "no eval record with a like-for-like baseline or an --expect value"))
    if max_quant_drop is not None:
        requested.append(("--max-quant-drop", partial(gate_quant_drop, records, max_quant_drop, confidence,
                                                      inconclusive, base_dir, resamples),
                          "no quantized eval record with a float sibling of the same family on the same images"))
    if min_relative_accuracy is not None:
        requested.append(("--min-relative-accuracy", partial(gate_relative_accuracy, records, min_relative_accuracy,
                                                             confidence, inconclusive, base_dir, resamples),
                          "no quantized eval record with a float sibling on the same images, and no quant_search "
                          "record"))
    if max_slowdown is not None:
        requested.append(("--max-slowdown", partial(gate_slowdown, records, max_slowdown, alpha, history,
                                                    change_points, acks, store),
                          "no A/B bench record and no latency or AP series of six or more runs" if change_points else
                          "no A/B bench record and no two bench records of one model with the same host fingerprint "
                          "and settings"))
    for flag, gate, nothing in requested:
        found = gate()
        if not found and skip_missing:
            found = [Finding(flag.lstrip("-"), "-", True, f"skipped: nothing to check ({nothing})")]
        if not found:
            raise HarnessError(f"{flag}: nothing to check ({nothing}); --skip-missing lets a first run pass")
        findings.extend(found)
    return findings

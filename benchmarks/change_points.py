"""Detection, false alarms and delay of the change-point gate against the series gate, on this machine's bench noise.

    python benchmarks/change_points.py --mirror ../shared/mirror --rounds 20 --otava /tmp/otava/lib \
        --artifact benchmarks/results/change_points.json
    python benchmarks/change_points.py --from-artifact benchmarks/results/change_points.json --otava /tmp/otava/lib ...

First it runs `harness bench` on the mirror's mb3-centernet-int8 (short settings, fresh processes, one after the
other) ROUNDS times and keeps each run's invoke samples: that is the run-to-run and within-run noise a series
on this machine has. `--from-artifact` takes the runs kept in an earlier artifact instead of running again.

Then it builds synthetic histories of LENGTH commits: each commit's run is one of the real runs drawn at random
(its samples as measured), multiplied by the change planted at that commit: none; a step of 5%, 10% or 20% at
commit STEP; or a drift of DRIFT per commit from commit STEP on. (The run's samples are resampled with
replacement, so that a run drawn twice is two runs with the same noise, not one value tied with itself.)
After every commit from STEP on, each gate is asked, as CI would ask it, whether the history up to that
commit fails at `--max-slowdown R`:
- change points: `harness check --change-points` (harness.analyse.history.in_force over harness.analyse.change_points);
- series gate: `harness check --max-slowdown` (harness.analyse.check.gate_latency: the newest run against the
  median of the last 10, beyond the noise band, Mann-Whitney significant);
- Otava (with `--otava DIR`, where DIR holds apache-otava installed with `pip install --no-deps --target DIR
  apache-otava`; its analysis needs only numpy and scipy): Otava's change points (compute_change_points, its
  defaults: window 50, p 0.001) under the same in-force rule.
`--noise-scale S` also asks how the gates fare on a quieter runner with noise of the same shape: each real run's
samples are multiplied by (its p50 / the median p50)^(S - 1), so its p50 sits at median x (p50 / median)^S
(S = 1: as measured; 0.25: a quarter of the spread in log terms, the same skew and outliers, scaled).
Per planted change and gate: the share of histories flagged at least once from the change on (on histories
with no change: the false-alarm rate), the delay in commits from the change to the first flag, and the share
still failing at the last commit. Writes the summary; `--artifact FILE` as a receipts artifact (README.md's table).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from receipts import start, write_artifact

from harness.analyse.change_points import MAX_PVALUE, ChangePoint, detect
from harness.analyse.check import gate_latency
from harness.analyse.history import Point, Series, in_force

MODEL = "mb3-centernet-int8"
BENCH = ["--min-count", "30", "--min-duration", "1", "--e2e-min-count", "1", "--e2e-min-duration", "0", "--warmup", "3"]


def measure(rounds: int, mirror: str, threads: str | None) -> list[list[float]]:
    """Each run's invoke samples (seconds), from `rounds` fresh `harness bench` processes."""
    from harness.records.reader import read_record

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            out = Path(tmp) / f"run_{i:02d}.json"
            cmd = [sys.executable, "-m", "harness", "bench", MODEL, *BENCH, "--mirror", mirror, "--json", str(out),
                   *(["--threads", threads] if threads else [])]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            runs.append([round(s, 7) for s in read_record(out, "bench")["phases"]["model_only"]["samples_s"]])
            print(f"run {i + 1}/{rounds}: p50 {np.median(runs[-1]) * 1e3:.2f} ms", file=sys.stderr)
    return runs


def factors(kind: str, length: int, step_at: int, drift: float) -> np.ndarray:
    f = np.ones(length)
    if kind.startswith("step"):
        f[step_at:] = 1 + int(kind.split()[1].rstrip("%")) / 100
    elif kind == "drift":
        f[step_at:] = (1 + drift) ** np.arange(1, length - step_at + 1)
    return f


def _series(p50s: np.ndarray) -> Series:
    pts = tuple(Point(float(v), float(v), float(v), f"c{i}", f"{i:04d}", f"{i:04d}", "main", "unknown", "unknown")
                for i, v in enumerate(p50s))
    return Series("synthetic", "latency", "synthetic", "host", MODEL, "", pts)


def cp_gate(finder: Callable[[np.ndarray], list[ChangePoint]]) -> Callable[[list[np.ndarray], float], bool]:
    def fails(history: list[np.ndarray], max_ratio: float) -> bool:
        p50s = np.array([np.median(r) for r in history])
        return in_force(_series(p50s), finder(p50s), max_ratio) is not None
    return fails


def series_gate(history: list[np.ndarray], max_ratio: float) -> bool:
    records = [{"kind": "bench", "model": {"name": MODEL}, "host": {"fingerprint": "host"}, "settings": {},
                "created": f"{i:04d}", "phases": {"model_only": {"samples_s": r}}} for i, r in enumerate(history)]
    return not all(f.passed for f in gate_latency(records, max_ratio, alpha=0.01))  # type: ignore[arg-type]


def otava_finder(path: str) -> Callable[[np.ndarray], list[ChangePoint]]:
    sys.path.insert(0, path)
    from otava.analysis import compute_change_points

    def find(x: np.ndarray) -> list[ChangePoint]:
        cps, _ = compute_change_points(list(map(float, x)))
        return [ChangePoint(int(c.index), float(c.stats.pvalue), float(c.stats.mean_1), float(c.stats.mean_2))
                for c in cps]
    return find


def trial_outcome(fails: Callable[[list[np.ndarray], float], bool], history: list[np.ndarray], step_at: int,
                  max_ratio: float) -> tuple[int | None, bool]:
    """(commits from the change to the first failing check, or None; whether the last check fails)."""
    first, last = None, False
    for n in range(step_at + 1, len(history) + 1):
        last = fails(history[:n], max_ratio)
        if last and first is None:
            first = n - 1 - step_at
    return first, last


def scaled(runs: list[list[float]], scale: float) -> list[np.ndarray]:
    """The runs with their p50s' spread around the median p50 scaled by `scale` in log terms (see the docstring)."""
    p50 = np.array([np.median(r) for r in runs])
    mid = float(np.median(p50))
    return [np.asarray(r, float) * (m / mid) ** (scale - 1) for r, m in zip(runs, p50, strict=True)]


def simulate(samples: list[np.ndarray], scale: float, args: argparse.Namespace, gates: dict[str, Callable]
             ) -> list[dict]:
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind in ("none", "step 5%", "step 10%", "step 20%", "drift"):
        f = factors(kind, args.length, args.step, args.drift)
        histories = [[rng.choice(samples[j], samples[j].size) * f[i]
                      for i, j in enumerate(rng.integers(0, len(samples), args.length))] for _ in range(args.trials)]
        for name, fails in gates.items():
            t0 = time.perf_counter()
            out = [trial_outcome(fails, h, args.step, args.max_slowdown) for h in histories]
            delays = [d for d, _ in out if d is not None]
            rows.append({"noise_scale": scale, "change": kind, "gate": name, "trials": len(out),
                         "flagged": len(delays) / len(out),
                         "delay_median": float(np.median(delays)) if delays else None,
                         "delay_p90": float(np.percentile(delays, 90)) if delays else None,
                         "failing_at_end": sum(last for _, last in out) / len(out),
                         "wall_s": time.perf_counter() - t0})
            print(f"x{scale:g} {kind:9s} {name:28s} flagged {rows[-1]['flagged']:.2f} delay {rows[-1]['delay_median']} "
                  f"failing at end {rows[-1]['failing_at_end']:.2f}", file=sys.stderr)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mirror", default=str(Path(__file__).resolve().parents[2] / "shared" / "mirror"))
    p.add_argument("--rounds", type=int, default=16, help="real bench runs to take the noise from (16)")
    p.add_argument("--threads", help="interpreter threads for each bench (default: the runtime's)")
    p.add_argument("--from-artifact", help="take the runs from this artifact instead of running the benches")
    p.add_argument("--otava", help="a folder holding apache-otava (pip install --no-deps --target DIR apache-otava)")
    p.add_argument("--trials", type=int, default=100, help="synthetic histories per planted change (100)")
    p.add_argument("--length", type=int, default=60, help="commits per history (60)")
    p.add_argument("--step", type=int, default=30, help="the commit (0-based) where the change starts (30)")
    p.add_argument("--drift", type=float, default=0.005, help="the drift per commit (0.005: 0.5%%)")
    p.add_argument("--max-slowdown", type=float, default=1.03, help="R of both gates (1.03)")
    p.add_argument("--noise-scale", type=float, nargs="+", default=[1.0, 0.25],
                   help="the real runs' spread as measured (1) and scaled (default: 1 0.25)")
    p.add_argument("--seed", type=int, default=25)
    p.add_argument("--also-pvalue", type=float, nargs="*", default=[0.005],
                   help="also run the harness's method at these significance levels (default: 0.005)")
    p.add_argument("--artifact", help="write the results as a receipts artifact, e.g. "
                                      "benchmarks/results/change_points.json (default: none)")
    args = p.parse_args()
    provenance = start(sys.argv)
    t0 = time.perf_counter()
    if args.from_artifact:
        import json

        kept = json.loads(Path(args.from_artifact).read_text())
        runs = kept["data"]["runs_s"]
        measured = kept["data"].get("measured") or {"command": kept["command"], "date": kept["date"],
                                                    "noise_source": kept["data"]["settings"]["noise_source"]}
    else:
        runs = measure(args.rounds, args.mirror, args.threads)
        measured = {"command": provenance["command"], "date": provenance["date"],
                    "noise_source": f"{args.rounds} runs of harness bench {MODEL} {' '.join(BENCH)}"}
    source = measured["noise_source"]
    gates: dict[str, Callable] = {f"change points (harness, p < {MAX_PVALUE:g})": cp_gate(detect)}
    for level in args.also_pvalue:  # the same method at other levels: a comparison at a matched false-alarm rate
        gates[f"change points (harness, p < {level:g})"] = cp_gate(partial(detect, max_pvalue=level))
    if args.otava:
        from importlib.metadata import version

        sys.path.insert(0, args.otava)
        gates[f"Otava {version('apache-otava')} change points"] = cp_gate(otava_finder(args.otava))
    gates["series gate (median of last 10)"] = series_gate
    rows, noise = [], {}
    for scale in args.noise_scale:
        samples = scaled(runs, scale)
        rows += simulate(samples, scale, args, gates)
        p50 = np.array([np.median(r) for r in samples]) * 1e3
        noise[f"{scale:g}"] = {"runs": len(runs), "p50_ms_median": float(np.median(p50)),
                               "p50_cv_percent": float(100 * p50.std(ddof=1) / p50.mean()),
                               "p50_max_over_min": float(p50.max() / p50.min())}
    keys = ("trials", "length", "step", "drift", "max_slowdown", "seed", "noise_scale")
    data = {"settings": {k: getattr(args, k) for k in keys} | {"noise_source": source, "threads": args.threads},
            "noise": noise, "results": rows, "measured": measured, "runs_s": runs}
    if args.artifact:
        write_artifact(args.artifact, "change_points", provenance, data, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

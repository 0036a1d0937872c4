"""Receipts: every measured figure in README.md and docs/ comes from an artifact in benchmarks/results/.

    python benchmarks/receipts.py            # exit 1 and name each block that differs from its artifact
    python benchmarks/receipts.py --write    # re-render every marked block from its artifact

A measurement script (benchmarks/scaling.py, benchmarks/gate_noise.py, benchmarks/demo_time.py) writes its
artifact with `write_artifact`: the raw numbers plus what they were measured on (command, date, git commit,
cores, CPU model, load average before and after). A Markdown file quotes an artifact only between markers

    <!-- receipt: benchmarks/results/scaling.json table=scaling -->
    ...rendered by RENDERERS["scaling"] from the artifact...
    <!-- /receipt -->

and tests/test_receipts.py holds every block equal to its rendering, so a quoted figure cannot drift from
its artifact. A table whose load average was above the core count is labelled "measured under load".
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MARKDOWN = ("README.md", "docs")
BLOCK = re.compile(r"(^<!-- receipt: (?P<path>\S+) table=(?P<table>[\w-]+) -->\n)(?P<body>.*?)(^<!-- /receipt -->)",
                   re.S | re.M)
PACKAGES = ("ai-edge-litert", "tensorflow-cpu", "numpy", "faster-coco-eval", "hotcoco", "ultrafast-pycocotools",
            "pycocotools", "scipy")


# --------------------------------------------------------------------------------------------------
# Writing an artifact (the measurement scripts)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine() -> dict:
    """What the numbers were measured on: cores, CPU model, memory, Python and runtime versions."""
    from harness.records.host import cpu_model, memory_bytes

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "memory_bytes": memory_bytes(),
            "machine": platform.machine(), "python": platform.python_version(), "packages": versions}


def start(argv: list[str]) -> dict:
    """The artifact's provenance, taken before measuring: command, date, commit, machine, load average."""
    script = Path(argv[0]).resolve()
    if script.is_relative_to(REPO):  # the script as the repository names it, wherever it was run from
        argv = [str(script.relative_to(REPO)), *argv[1:]]
    return {"command": " ".join(["python", *argv]), "date": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"), "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")), "machine": machine(),
            "load_average": {"start": list(os.getloadavg())}}


def write_artifact(path: str | Path, name: str, provenance: dict, data: object, wall_s: float | None) -> Path:
    """Write `{"artifact": name, ...provenance, "wall_s", "data"}` atomically; the load average at the end too."""
    from harness.common.fileio import write_json_atomic

    record = {"artifact": name, **provenance, "wall_s": wall_s, "data": data}
    record["load_average"] = {**provenance["load_average"], "end": list(os.getloadavg())}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, record, indent=1)


# --------------------------------------------------------------------------------------------------
# Rendering an artifact as Markdown


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def under_load(artifact: dict) -> bool:
    """The 1-minute load average, at the start or the end, above the number of cores."""
    la, cores = artifact["load_average"], artifact["machine"]["nproc"]
    return max(la["start"][0], la.get("end", la["start"])[0]) > cores


def caption(artifact: dict) -> str:
    m, la = artifact["machine"], artifact["load_average"]
    load = f"load average {la['start'][0]:.2f} at the start, {la.get('end', la['start'])[0]:.2f} at the end"
    label = "measured under load" if under_load(artifact) else "measured"
    commit = (artifact.get("git_commit") or "unknown")[:7] + (" with local changes" if artifact.get("git_dirty")
                                                              else "")
    return (f"*{label.capitalize()} {artifact['date'][:10]} on {m['nproc']} cores of {m['cpu_model']} ({load}), "
            f"Python {m['python']}, commit {commit}: `{artifact['command']}`.*")


def render_scaling(artifact: dict) -> list[str]:
    rows = [[r["model"].removeprefix("mb3-centernet-"), r["images"], f"{r['workers']} x {r['threads']}",
             f"{r['loop_wall_s']:.2f}", f"{r['startup_s']:.2f}", f"{r['invoke_sum_s']:.2f}", f"{r['ratio']:.3f}",
             f"{r['loop_over_invoke']:.3f}"] for r in artifact["data"]]
    return _table(["model", "images", "workers x threads", "loop wall s", "start-up s", "sum of invoke s", "ratio",
                   "loop / invoke"], rows)


def render_gate_noise(artifact: dict) -> list[str]:
    s, settings = artifact["data"]["summary"], artifact["data"]["settings"]

    def spread(d: dict, digits: int = 3) -> str:
        return f"{d['min']:.{digits}f}-{d['max']:.{digits}f} (median {d['median']:.{digits}f})"

    rows = []
    for key, name in (("aa", "A/A f32 vs f32"), ("ab", "A/B int8 vs f32")):
        g = s[key]
        rows.append([f"{name}, `--max-slowdown {s['max_slowdown']:g}`", g["runs"], f"**{g['fails']}**",
                     f"{g['width']['median']:.3f} / {g['width']['max']:.3f}", spread(g["ratio"])])
    for label, v in s["series"].items():
        limit, rule = label.split(" ", 1)
        rows.append([f"series, `--max-slowdown {limit}`, {rule}", f"{v['checks']} checks", f"**{v['fails']}**", "",
                     ""])
    threads = settings.get("threads") or "the runtime's default"
    ref = s["reference_ratio"]
    return [*_table(["gate", "runs", "fails", "interval width (median / max)", "ratio"], rows), "",
            f"{settings['rounds']} rounds, {settings['instances']} instances per side, {settings['blocks']} blocks of "
            f"{settings['block_size']}, threads: {threads}. Plain f32 p50: {spread(s['plain_p50_ms'], 1)} ms "
            f"(CV {s['plain_p50_ms']['cv_percent']:.1f}%). Reference ratio: f32 / reference "
            f"{spread(ref['f32/reference'], 2)} (CV {ref['f32/reference']['cv_percent']:.1f}%), int8 / reference "
            f"{spread(ref['int8/reference'], 2)} (CV {ref['int8/reference']['cv_percent']:.1f}%)."]


def render_demo(artifact: dict) -> list[str]:
    d = artifact["data"]
    latency = {r["model"]: r for r in d["latency"]}

    def num(value: str | None) -> str:
        return "" if value in (None, "") else f"{float(value):.2f}"

    rows = []
    for r in d["accuracy"]:
        lat = latency.get(r["model"], {})
        rows.append([r["model"], r["runtime"], num(r["AP"]), num(r["AP50"]), num(r["AP75"]), num(r["published AP"]),
                     r["like for like"], num(lat.get("invoke p50 ms")), num(lat.get("invoke p90 ms")),
                     num(lat.get("invoke p99 ms")), num(lat.get("e2e p50 ms"))])
    wall = d["harness_demo_wall_s"]
    return [f"`harness demo` took {int(wall // 60)} min {wall % 60:.0f} s.", "",
            *_table(["model", "runtime", "AP", "AP50", "AP75", "published AP", "like for like", "invoke p50 ms",
                     "invoke p90 ms", "invoke p99 ms", "end-to-end p50 ms"], rows)]


def render_board_arm64(artifact: dict) -> list[str]:
    d = artifact["data"]
    cache = "with the board cache warm" if d["cache_warm_at_start"] else "from an empty board cache"
    return [f"`nox -s board-arm64` took {d['session_wall_s'] / 60:.1f} min {cache} "
            f"(exit status {d['exit_status']}; pytest: {d['pytest']})."]


def _p(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def render_tide_agreement(artifact: dict) -> list[str]:
    d = artifact["data"]
    types = ("cls", "loc", "both", "dupe", "bkg", "miss")
    rows = [[tool, *(_p(v["errors"][t]) for t in types), _p(v["special"]["fp"]), _p(v["special"]["fn"]),
             _p(v["AP50"])] for tool, v in d["tools"].items()]
    return _table(["tool", *types, "FP", "FN", "AP50"], rows)


def render_tide_pairs(artifact: dict) -> list[str]:
    d = artifact["data"]
    types = ("cls", "loc", "both", "dupe", "bkg", "miss", "fp", "fn")
    rows = []
    for pair, block in d["pairs"].items():
        if "sizes" not in block:
            continue
        for size in ("all", "small", "medium", "large"):
            b = block["sizes"].get(size)
            if b:
                rows.append([pair, size, f"{_p(b['AP50']['a'])} -> {_p(b['AP50']['b'])}",
                             *(f"{_p(b[t]['delta'])} [{_p(b[t]['lo'])}, {_p(b[t]['hi'])}]" for t in types)])
    return _table(["pair", "size", "AP50", *types], rows)


def render_tide_evals(artifact: dict) -> list[str]:
    d = artifact["data"]
    types = ("cls", "loc", "both", "dupe", "bkg", "miss")
    rows = [[m, size, _p(b["AP50"]), *(_p(b["errors"][t]) for t in types), _p(b["special"]["fp"]),
             _p(b["special"]["fn"])] for m, e in d["evals"].items() for size, b in e["sizes"].items()]
    return _table(["model", "size", "AP50", *types, "FP", "FN"], rows)


def render_change_points(artifact: dict) -> list[str]:
    d = artifact["data"]
    st, scales = d["settings"], [f"{x:g}" for x in d["settings"]["noise_scale"]]
    cells: dict[tuple[str, str], list[str]] = {}
    for r in d["results"]:
        delay = "" if r["delay_median"] is None else f"{r['delay_median']:g}"
        cells.setdefault((r["change"], r["gate"]), []).extend(
            [f"**{100 * r['flagged']:.0f}%**", delay, f"{100 * r['failing_at_end']:.0f}%"])
    header = ["planted at commit " + str(st["step"]), "gate"]
    for s in scales:
        n = d["noise"][s]
        what = "as measured" if s == "1" else f"spread x{s}"
        header += [f"flagged, noise {what} (CV {n['p50_cv_percent']:.0f}%)", "delay", "failing at the end"]
    rows = [[change if change != "none" else "none (false alarms)", gate, *v] for (change, gate), v in cells.items()]
    n = d["noise"][scales[0]]
    return [*_table(header, rows), "",
            f"{st['trials']} histories of {st['length']} commits per row, `--max-slowdown {st['max_slowdown']:g}`, "
            f"drift {100 * st['drift']:g}% per commit; delay: median commits from the change to the first failing "
            f"check. Noise from {n['runs']} real runs of mb3-centernet-int8 (p50 median {n['p50_ms_median']:.0f} ms, "
            f"max/min {n['p50_max_over_min']:.1f}), measured {d['measured']['date'][:10]} by "
            f"`{d['measured']['command']}`."]


def render_change_points_summary(artifact: dict) -> list[str]:
    """The README's short form: share of histories flagged, per gate, at both noise levels."""
    d = artifact["data"]
    scales = [f"{x:g}" for x in d["settings"]["noise_scale"]]
    gates = list(dict.fromkeys(r["gate"] for r in d["results"]))
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for r in d["results"]:
        cells.setdefault((r["change"], r["gate"]), {})[f"{r['noise_scale']:g}"] = r["flagged"]
    changes = list(dict.fromkeys(r["change"] for r in d["results"]))
    rows = [[c if c != "none" else "none (false alarms)",
             *(" / ".join(f"{100 * cells[(c, g)][s]:.0f}%" for s in scales) for g in gates)] for c in changes]
    cvs = " / ".join(f"{d['noise'][s]['p50_cv_percent']:.0f}%" for s in scales)
    return [*_table(["planted at commit " + str(d["settings"]["step"]), *gates], rows), "",
            f"Share of {d['settings']['trials']} histories flagged, at the noise as measured / scaled down "
            f"(CV {cvs}); delays and the rest in docs/records.md."]


def render_full_coco_summary(artifact: dict) -> list[str]:
    d = artifact["data"]
    r, t, mem = d["ratios"], d["targets"], d["memory"][-1]
    py = d["headline"]["pycocotools_s"] if "headline" in d else d["scoring"]["engines"]["pycocotools"]["seconds"]
    rounds = f" (medians of {len(d['headline']['rounds'])} interleaved rounds)" if "headline" in d else ""
    return _table(["on 5,000 images, 500k detections" + rounds, "measured", "target"], [
        ["`harness eval --results` vs pycocotools' scoring", f"{r['score_speedup']:.1f}x faster, same 12 stats",
         f">= {t['score_speedup']:g}x"],
        [f"interval, {d['resamples']} resamples", f"{d['interval']['seconds']:.1f} s = "
         f"{r['interval_over_pycocotools']:.2f} of pycocotools' {py:.0f} s", f"<= {t['interval_over_pycocotools']:g}"],
        ["peak memory of the scoring command", f"{mem['score']['peak_mb']:.0f} MB", f"<= {t['score_peak_mb']:.0f} MB"],
        *([["with the TIDE error types (the default)", f"{mem['score_with_errors']['wall_s']:.1f} s, "
            f"{mem['score_with_errors']['peak_mb']:.0f} MB", ""]] if "score_with_errors" in mem else [])])


def render_full_coco(artifact: dict) -> list[str]:
    d = artifact["data"]
    sc = d["scoring"]
    engines = [[f"`{name}`", f"{row['seconds']:.2f}", f"{row['speedup']:.1f}x", "yes" if row["identical"] else "**no**"]
               for name, row in sc["engines"].items()]
    memory = [[m["images"], m["detections"], f"{m['score']['wall_s']:.2f}", f"{m['score']['peak_mb']:.0f}",
               f"{m['score_with_interval']['wall_s']:.2f}", f"{m['score_with_interval']['peak_mb']:.0f}"]
              for m in d["memory"]]
    return [f"{d['images']} images, {sc['detections']} detections, {sc['ground_truth']} ground-truth boxes.", "",
            *_table(["engine", "scoring s", "vs pycocotools", "12 stats identical"], engines), "",
            f"Interval ({d['resamples']} resamples, matching included): {d['interval']['seconds']:.2f} s, "
            f"{d['ratios']['interval_over_pycocotools']:.3f} of pycocotools' scoring. The eval loop beside the model "
            f"(stand-in executor, checkpoint written): {d['loop']['per_image_ms']:.2f} ms an image.", "",
            *_table(["images", "detections", "`eval --results` s", "peak MB", "with interval s", "peak MB"], memory)]


def render_eval_stages(artifact: dict) -> list[str]:
    d = artifact["data"]
    rows = [[stage, f"{d['per_image_ms'][stage]:.1f}" if stage in d["per_image_ms"] else "",
             f"{seconds:.1f}", f"{100 * d['share'][stage]:.1f}%"] for stage, seconds in d["at_full_s"].items()]
    threads = d["threads"] or "the runtime's default"
    return [f"`{d['model']}`, {d['images']} mirror images timed stage by stage ({threads} threads), extrapolated "
            f"to {d['full_images']}; scoring and interval from `{d['scoring_from']}`. The limit: **{d['limit']}**.",
            "", *_table(["stage", "ms an image", f"s at {d['full_images']} images", "share"], rows)]


RENDERERS: dict[str, Callable[[dict], list[str]]] = {
    "change_points_summary": render_change_points_summary,
    "tide_agreement": render_tide_agreement,
    "tide_pairs": render_tide_pairs,
    "tide_evals": render_tide_evals,
    "change_points": render_change_points,
    "eval_stages": render_eval_stages,
    "full_coco": render_full_coco,
    "full_coco_summary": render_full_coco_summary,
    "board_arm64": render_board_arm64,
    "demo": render_demo,
    "scaling": render_scaling,
    "gate_noise": render_gate_noise,
}


def render(path: str, table: str) -> str:
    """The body of one marked block: the caption, a blank line, the rendered table (each line ends in \\n)."""
    import json

    if table not in RENDERERS:
        raise ValueError(f"no renderer {table!r}; known: {', '.join(RENDERERS)}")
    if not (REPO / path).is_file():
        raise ValueError(f"artifact not found: {path}")
    artifact = json.loads((REPO / path).read_text())
    return "\n".join([caption(artifact), "", *RENDERERS[table](artifact)]) + "\n"


def markdown_files() -> list[Path]:
    files = []
    for name in MARKDOWN:
        p = REPO / name
        files += sorted(p.rglob("*.md")) if p.is_dir() else [p]
    return files


def rerender(text: str) -> str:
    """`text` with every marked block's body replaced by its rendering."""
    return BLOCK.sub(lambda m: m.group(1) + render(m["path"], m["table"]) + m.group(5), text)


def stale_blocks(text: str) -> list[str]:
    """`PATH table=NAME` for each marked block of `text` whose body differs from its rendering."""
    return [f"{m['path']} table={m['table']}" for m in BLOCK.finditer(text)
            if m["body"] != render(m["path"], m["table"])]


# A table header naming a measured quantity, and a sentence that says "measured" next to a figure with a unit.
MEASURED_HEADER = re.compile(r"\b(ms|s|p50|p90|p99|wall|ratio|fails|latency|speed-?up|throughput|dB|cosine)\b", re.I)
MEASURED_PROSE = re.compile(r"\bmeasured\b[^.]*?\d+(\.\d+)?\s?(ms|s|%|x|min)\b|\d+(\.\d+)?\s?(ms|s|%|x|min)\b[^.]*?"
                            r"\bmeasured\b", re.I)


def unmarked_measurements(text: str) -> list[str]:
    """Lines outside the receipt blocks and code fences that look measured: a table whose header names a
    measured quantity, or a sentence that says "measured" beside a figure with a unit."""
    text = BLOCK.sub("", text)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        is_header = line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("| ---")
        if is_header and MEASURED_HEADER.search(line):
            found.append(f"table: {line}")
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if not flat.startswith("|") and MEASURED_PROSE.search(flat):
            found.append(f"prose: {MEASURED_PROSE.search(flat).group(0)}")
    return found


def stale() -> list[str]:
    """`FILE: ...` for each stale block and each unmarked measured table or sentence, in every Markdown file."""
    out = []
    for f in markdown_files():
        text = f.read_text()
        out += [f"{f.relative_to(REPO)}: block {b} differs from its artifact" for b in stale_blocks(text)]
        out += [f"{f.relative_to(REPO)}: outside a receipt block: {u}" for u in unmarked_measurements(text)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="re-render every marked block in place (default: check only)")
    args = p.parse_args(argv)
    try:
        return _check_or_write(args.write)
    except ValueError as exc:
        print(f"receipts: error: {exc}", file=sys.stderr)
        return 2


def _check_or_write(write: bool) -> int:
    if not write:
        bad = stale()
        for line in bad:
            print(line)
        return 1 if bad else 0
    from harness.common.fileio import write_text_atomic

    for f in markdown_files():
        text = f.read_text()
        new = rerender(text)
        if new != text:
            write_text_atomic(f, new)
            print(f"rendered: {f.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`harness report --history`: a static site of every latency and AP series over commits, with its change points.

One folder, no server, no network: index.html (the page, its style and script inline) reads data.js, a script
that sets one global to the data (a browser loads a script from a file:// URL, where it would refuse to fetch
a JSON file), so the folder works from gh-pages and from a disk alike. history.json holds the same data for other
tools, bencher-metrics.json the newest runs in Bencher's format. Each series' change points are kept in
series/ID.json with a digest of the values they were computed from: a rebuild after new records arrive
recomputes only the series that changed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.analyse.change_points import MAX_PVALUE, ChangePoint
from harness.analyse.history import Series, acknowledgements, build, in_force
from harness.records.types import RunRecord

SITE_SCHEMA = "centernet-harness/history"


def _values_digest(series: Series, max_pvalue: float) -> str:
    values = [p.value for p in series.points]
    return hashlib.sha256(json.dumps([max_pvalue, values]).encode()).hexdigest()


def _changes(series: Series, cache: Path, max_pvalue: float) -> tuple[list[ChangePoint], bool]:
    """The series' change points, from the cache when its values are unchanged; True when computed now."""
    from harness.analyse.history import change_points
    from harness.common.fileio import write_json_atomic

    digest = _values_digest(series, max_pvalue)
    path = cache / f"{series.id}.json"
    try:
        kept = json.loads(path.read_text())
        if kept.get("digest") == digest:
            return [ChangePoint(**c) for c in kept["changes"]], False
    except (OSError, ValueError, TypeError, KeyError):
        pass
    found = change_points(series, max_pvalue) if len(series.points) >= 2 else []
    write_json_atomic(path, {"digest": digest, "changes": [asdict(c) for c in found]})
    return found, True


def site_data(records: Iterable[RunRecord], cache: Path, max_ratio: float, max_pvalue: float = MAX_PVALUE,
              acks: Iterable[Mapping[str, object]] = ()) -> tuple[dict, int]:
    """The page's data and how many series had their change points computed (not taken from the cache)."""
    acked = acknowledgements(acks)
    out_series, regressions, computed = [], [], 0
    for s in build(records):
        changes, fresh = _changes(s, cache, max_pvalue)
        computed += fresh
        reg = in_force(s, changes, max_ratio, acked.get(s.id, ()))
        raw = in_force(s, changes, max_ratio)
        pts = s.points
        entry: dict[str, Any] = {
            "id": s.id, "metric": s.metric, "unit": s.unit, "label": s.label, "host": s.host, "model": s.model,
            "settings": s.settings, "lower_is_better": s.metric == "latency",
            "points": [{"commit": p.commit, "commit_time": p.commit_time, "branch": p.branch, "url": p.run_url,
                        "runner": p.runner, "created": p.created, "v": p.value, "lo": p.lo, "hi": p.hi} for p in pts],
            "changes": [{"index": c.index, "p": c.pvalue, "before": c.before, "after": c.after, "ratio": c.ratio,
                         "worse": s.worse(c.before, c.after), "from": pts[c.index - 1].commit,
                         "to": pts[c.index].commit} for c in changes],
            "in_force": None if reg is None else {"index": reg.change.index, "ratio": reg.ratio},
            "acknowledged": sorted(acked.get(s.id, [])),
        }
        out_series.append(entry)
        for c in entry["changes"]:
            if c["worse"] <= 1:
                continue
            first = pts[c["index"]]
            regressions.append({
                "series": s.id, "label": s.label, "index": c["index"], "from": c["from"], "to": c["to"],
                "when": first.commit_time if first.commit_time != "unknown" else first.created,
                "worse": c["worse"], "p": c["p"], "run_url": first.run_url,
                "in_force": reg is not None and reg.change.index == c["index"],
                "acknowledged": raw is not None and raw.change.index == c["index"] and reg is None,
            })
    regressions.sort(key=lambda r: r["when"], reverse=True)
    data = {"schema": SITE_SCHEMA, "schema_version": 1,
            "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "max_ratio": max_ratio, "max_pvalue": max_pvalue, "series": out_series, "regressions": regressions}
    return data, computed


def write_site(records: Sequence[RunRecord], out: str | Path, max_ratio: float, max_pvalue: float = MAX_PVALUE,
               acks: Iterable[Mapping[str, object]] = (), title: str = "CenterNet harness history") -> dict:
    """Write the site into `out`; returns {"index": path, "series": n, "computed": n, "regressions": n}."""
    import html

    from harness.analyse.report.dashboard import bencher_metrics
    from harness.common.fileio import write_json_atomic, write_text_atomic

    out = Path(out)
    (out / "series").mkdir(parents=True, exist_ok=True)
    data, computed = site_data(records, out / "series", max_ratio, max_pvalue, acks)
    text = json.dumps(data, separators=(",", ":"))
    write_text_atomic(out / "data.js", f"window.HARNESS_HISTORY = {text};\n")
    write_json_atomic(out / "history.json", data, indent=1)
    write_json_atomic(out / "bencher-metrics.json", bencher_metrics(records), indent=1)
    index = write_text_atomic(out / "index.html", PAGE.replace("__TITLE__", html.escape(title)))
    return {"index": index, "series": len(data["series"]), "computed": computed,
            "regressions": sum(r["in_force"] for r in data["regressions"])}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1em; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ddd; padding: .25em .5em;
text-align: left; vertical-align: top; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.box { overflow-x: auto; } .muted { color: #777; } .bad { color: #b00020; font-weight: 600; } code { font-size: .95em; }
svg.chart { width: 100%; height: 260px; background: #fcfcfc; border: 1px solid #e4e4e4; cursor: crosshair; }
svg .band { fill: #8ab4f8; opacity: .35; } svg .line { fill: none; stroke: #1a56c4; stroke-width: 1.5; }
svg .dot { fill: #1a56c4; } svg .change { stroke: #d93025; stroke-width: 2; stroke-dasharray: 5 3; }
svg .change.better { stroke: #188038; } svg .axis { stroke: #999; } svg text { font-size: 11px; fill: #555; }
svg .sel { fill: #fbbc04; opacity: .25; } svg .cursor { stroke: #555; stroke-width: 1; }
#tip { position: fixed; pointer-events: none; background: #fff; border: 1px solid #aaa; padding: .4em .6em;
font-size: 12px; box-shadow: 0 2px 6px rgba(0,0,0,.15); display: none; white-space: pre; }
#errors { color: #b00020; white-space: pre-wrap; }
</style></head>
<body>
<h1>__TITLE__</h1>
<p class="muted" id="summary">Loading data.js ...</p>
<div id="errors"></div>
<h2>Regressions, newest first</h2>
<div class="box"><table id="regressions"><thead><tr><th>when</th><th>series</th><th>commits</th><th>change</th>
<th>p</th><th>state</th><th>CI run</th></tr></thead><tbody></tbody></table></div>
<h2>Series</h2>
<p class="muted">Drag across a chart to zoom into those commits, double-click to zoom out; hover for a run's commit.
Dashed lines: change points (red: worse, green: better), between the last run before and the first run after.</p>
<div id="series"></div>
<div id="tip"></div>
<script src="data.js"></script>
<script>
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const D = window.HARNESS_HISTORY;
  const errors = document.getElementById("errors");
  if (!D) { errors.textContent = "data.js is missing or did not load: rebuild with harness report --history."; return; }
  const tip = document.getElementById("tip");
  const short = c => (c && c !== "unknown") ? c.slice(0, 10) : "unknown";
  const pct = r => (r >= 1 ? "+" : "") + ((r - 1) * 100).toFixed(1) + "%";
  const fmt = v => Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(2);
  function h(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function s(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function link(url, text) {
    return (url && url !== "unknown") ? h("a", {href: url}, text) : h("span", {class: "muted"}, "unknown");
  }
  const byId = {};
  D.series.forEach(x => { byId[x.id] = x; });
  const tbody = document.querySelector("#regressions tbody");
  if (!D.regressions.length) {
    const tr = h("tr"); tr.appendChild(h("td", {colspan: 7, class: "muted"}, "No change point made a series worse."));
    tbody.appendChild(tr);
  }
  D.regressions.forEach(r => {
    const tr = h("tr", {"data-series": r.series, "data-from": r.from, "data-to": r.to});
    tr.appendChild(h("td", {}, (r.when || "").slice(0, 19).replace("T", " ")));
    const td = h("td"); td.appendChild(h("a", {href: "#s-" + r.series}, r.label)); tr.appendChild(td);
    tr.appendChild(h("td", {}, short(r.from) + ".." + short(r.to)));
    tr.appendChild(h("td", {class: "num"}, pct(r.worse) + " worse"));
    tr.appendChild(h("td", {class: "num"}, r.p.toPrecision(2)));
    tr.appendChild(h("td", r.in_force ? {class: "bad"} : {},
                     r.in_force ? "in force" : r.acknowledged ? "acknowledged" : "undone or within limit"));
    const ci = h("td"); ci.appendChild(link(r.run_url, "run")); tr.appendChild(ci);
    tbody.appendChild(tr);
  });
  const W = 900, H = 260, L = 64, R = 12, T = 14, B = 34;
  function draw(svg, x, view) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const [i0, i1] = view, pts = x.points.slice(i0, i1 + 1);
    let lo = Math.min(...pts.map(p => p.lo)), hi = Math.max(...pts.map(p => p.hi));
    if (hi === lo) { hi += Math.abs(hi) * 0.05 || 1; lo -= Math.abs(lo) * 0.05 || 1; }
    const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
    const X = i => L + (i1 === i0 ? 0.5 : (i - i0) / (i1 - i0)) * (W - L - R);
    const Y = v => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    svg.appendChild(s("line", {class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B}));
    svg.appendChild(s("line", {class: "axis", x1: L, y1: T, x2: L, y2: H - B}));
    for (let k = 0; k <= 4; k++) {
      const v = lo + (hi - lo) * k / 4;
      svg.appendChild(s("text", {x: L - 6, y: Y(v) + 4, "text-anchor": "end"}, fmt(v)));
    }
    svg.appendChild(s("text", {x: 4, y: T + 2}, x.unit));
    const ticks = Math.min(8, i1 - i0 + 1);
    for (let k = 0; k < ticks; k++) {
      const i = Math.round(i0 + (i1 - i0) * (ticks === 1 ? 0 : k / (ticks - 1)));
      const anchor = ticks > 1 && k === ticks - 1 ? "end" : "middle";
      svg.appendChild(s("text", {x: X(i), y: H - B + 14, "text-anchor": anchor},
                        short(x.points[i].commit).slice(0, 7)));
    }
    svg.appendChild(s("text", {x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle"}, "commits, oldest to newest"));
    const idx = pts.map((p, k) => i0 + k);
    const band = idx.map(i => X(i) + "," + Y(x.points[i].hi)).concat(
      idx.slice().reverse().map(i => X(i) + "," + Y(x.points[i].lo)));
    svg.appendChild(s("polygon", {class: "band", points: band.join(" ")}));
    svg.appendChild(s("polyline", {class: "line", points: idx.map(i => X(i) + "," + Y(x.points[i].v)).join(" ")}));
    idx.forEach(i => svg.appendChild(s("circle", {class: "dot", cx: X(i), cy: Y(x.points[i].v), r: 2.5,
                                                   "data-index": i, "data-commit": x.points[i].commit})));
    x.changes.forEach(c => {
      if (c.index <= i0 || c.index > i1) return;
      const cx = (X(c.index - 1) + X(c.index)) / 2;
      const g = s("g");
      g.appendChild(s("line", {class: "change" + (c.worse > 1 ? "" : " better"), x1: cx, x2: cx, y1: T, y2: H - B,
                               "data-index": c.index, "data-from": c.from, "data-to": c.to,
                               "data-ratio": c.ratio.toFixed(4), "data-p": c.p}));
      g.appendChild(s("text", {x: cx + 4, y: T + 12},
                      pct(c.ratio) + " p=" + c.p.toPrecision(2) + " " + short(c.from).slice(0, 7) + ".." +
                      short(c.to).slice(0, 7)));
      svg.appendChild(g);
    });
    return {X, Y};
  }
  const host = document.getElementById("series");
  D.series.forEach(x => {
    const sec = h("section", {id: "s-" + x.id, "data-series": x.id});
    sec.appendChild(h("h3", {}, x.label));
    const state = x.in_force ? "regression in force: " + pct(x.in_force.ratio) + " since run " + (x.in_force.index + 1)
                             : "no regression in force";
    sec.appendChild(h("p", {class: x.in_force ? "bad" : "muted"},
                      x.points.length + " runs, " + x.changes.length + " change point(s); " + state +
                      "; series id " + x.id + (x.acknowledged.length ? "; acknowledged at " +
                      x.acknowledged.map(short).join(", ") : "")));
    const svg = s("svg", {class: "chart", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none"});
    sec.appendChild(svg);
    host.appendChild(sec);
    let view = [0, x.points.length - 1], scale = draw(svg, x, view), drag = null;
    const toIndex = ev => {
      const r = svg.getBoundingClientRect(), px = (ev.clientX - r.left) * W / r.width;
      const f = Math.max(0, Math.min(1, (px - L) / (W - L - R)));
      return Math.round(view[0] + f * (view[1] - view[0]));
    };
    svg.addEventListener("mousemove", ev => {
      const i = toIndex(ev), p = x.points[i];
      tip.textContent = "run " + (i + 1) + " of " + x.points.length + "\\ncommit " + p.commit +
        "\\nbranch " + p.branch +
        "\\n" + fmt(p.v) + " " + x.unit + (p.lo !== p.hi ? " (p10 " + fmt(p.lo) + ", p90 " + fmt(p.hi) + ")" : "") +
        "\\nran " + p.created + "\\nrunner " + p.runner + (p.url !== "unknown" ? "\\nclick: open the CI run" : "");
      tip.style.display = "block"; tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 14) + "px";
      if (drag !== null) {
        const old = svg.querySelector(".sel"); if (old) old.remove();
        const a = scale.X(Math.min(drag, i)), b = scale.X(Math.max(drag, i));
        svg.appendChild(s("rect", {class: "sel", x: a, y: T, width: Math.max(1, b - a), height: H - T - B}));
      }
    });
    svg.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    svg.addEventListener("mousedown", ev => { drag = toIndex(ev); ev.preventDefault(); });
    svg.addEventListener("mouseup", ev => {
      const i = toIndex(ev), a = Math.min(drag, i), b = Math.max(drag, i);
      if (drag !== null && b - a >= 2) { view = [a, b]; scale = draw(svg, x, view); }
      else if (drag !== null && a === b && x.points[i].url !== "unknown") { window.open(x.points[i].url, "_blank"); }
      drag = null; const old = svg.querySelector(".sel"); if (old) old.remove();
    });
    svg.addEventListener("dblclick", () => { view = [0, x.points.length - 1]; scale = draw(svg, x, view); });
  });
  document.getElementById("summary").textContent = D.series.length + " series, " +
    D.regressions.filter(r => r.in_force).length + " regression(s) in force beyond " + D.max_ratio +
    " (change points at p < " + D.max_pvalue + "); generated " + D.generated + ".";
  document.body.setAttribute("data-rendered", String(D.series.length));
})();
</script>
</body></html>
"""

"""`harness report --history` (the CI dashboard over time): the static history site, its incremental
rebuild, and the page in a real browser.

The store is the done-when one: 60 commits on two boards, board A 15% slower from commit 30 on. Chromium (headless,
from a file:// URL, no server, no network) must load the page without a script error and mark the change on
board A's chart between commits 29 and 30, and nowhere on board B's.
"""

from __future__ import annotations

import json
import re

import pytest
from history_store import commit_sha, history

from harness.cli import main
from harness.records.store import RecordStore

A, B = "imx8mp", "imx93"

# Put in <head> so it sees errors of the page's own scripts; after load, writes what the page drew into the DOM.
PROBE_HEAD = '<script>window.__errors = []; addEventListener("error", e => __errors.push(String(e.message)));</script>'
PROBE_TAIL = """<script>addEventListener("load", () => {
  const out = {errors: __errors, rendered: document.body.getAttribute("data-rendered"),
    sections: [...document.querySelectorAll("section[data-series]")].map(s => ({
      title: s.querySelector("h3").textContent, dots: s.querySelectorAll("circle.dot").length,
      changes: [...s.querySelectorAll("line.change")].map(l => ({from: l.dataset.from, to: l.dataset.to,
                                                                ratio: +l.dataset.ratio}))})),
    rows: [...document.querySelectorAll("#regressions tbody tr")].map(r => r.textContent)};
  const pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""


def _fingerprint(board: str) -> str:
    from fake_records import board_host

    return board_host(board)["fingerprint"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    store = tmp / "runs.sqlite"
    with RecordStore(store) as s:
        s.add(history(60, A, 50.0, steps={30: 1.15}, seed=1) + history(60, B, 120.0, seed=2))
    assert main(["report", "--history", "--store", str(store), "--out", str(tmp / "site"),
                 "--max-slowdown", "1.05"]) == 0
    return store, tmp / "site"


def test_the_history_marks_the_change_at_commit_30_on_board_a_only(site):
    data = json.loads((site[1] / "history.json").read_text())
    by_host = {next(b for b in (A, B) if _fingerprint(b) in s["host"]): s for s in data["series"]}
    (change,) = by_host[A]["changes"]
    assert (change["index"], change["from"], change["to"]) == (30, commit_sha(29), commit_sha(30))
    assert 1.10 < change["ratio"] < 1.20 and change["p"] < 1e-3
    assert by_host[A]["in_force"]["index"] == 30 and by_host[B]["changes"] == [] and by_host[B]["in_force"] is None
    (reg,) = data["regressions"]
    assert reg["in_force"] and reg["run_url"] == "https://github.com/example/harness/actions/runs/1030"
    assert [p["commit"] for p in by_host[A]["points"]] == [commit_sha(i) for i in range(60)]


def test_a_rebuild_recomputes_only_the_series_that_changed(site, capsys, tmp_path):
    store, out = site
    copy = tmp_path / "runs.sqlite"
    with RecordStore(store, create=False) as src, RecordStore(copy) as dst:
        dst.add(src.records())
    for path in out.rglob("*"):
        if path.is_file():
            (tmp_path / "site" / path.relative_to(out)).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "site" / path.relative_to(out)).write_bytes(path.read_bytes())
    capsys.readouterr()
    assert main(["report", "--history", "--store", str(copy), "--out", str(tmp_path / "site")]) == 0
    assert "2 series (0 recomputed)" in capsys.readouterr().out
    with RecordStore(copy) as s:
        s.add(history(1, B, 120.0, seed=5, start=60))
    assert main(["report", "--history", "--store", str(copy), "--out", str(tmp_path / "site")]) == 0
    assert "2 series (1 recomputed)" in capsys.readouterr().out


def test_bencher_metrics_hold_the_newest_p50_in_nanoseconds(site):
    bmf = json.loads((site[1] / "bencher-metrics.json").read_text())
    with RecordStore(site[0], create=False) as s:
        newest = [r for r in s.records() if r["provenance"]["code"]["commit"] == commit_sha(59)]
    for rec in newest:
        (name,) = [k for k in bmf if rec["host"]["fingerprint"] in k and " invoke " in k]
        assert bmf[name]["latency"]["value"] == round(rec["phases"]["model_only"]["stats"]["p50_s"] * 1e9)
        assert bmf[name]["latency"]["lower_value"] < bmf[name]["latency"]["value"] < bmf[name]["latency"]["upper_value"]


def test_the_page_in_chromium_loads_without_errors_and_marks_the_planted_step(site, tmp_path):
    from test_report_screen import _chromium

    page = site[1] / "index.html"
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("<head>", "<head>" + PROBE_HEAD, 1)
                     .replace("</body>", PROBE_TAIL + "</body>"))
    dom = _chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], tmp_path).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: the page's data or script did not load"
    got = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                     .replace("&gt;", ">"))
    assert got["errors"] == [] and got["rendered"] == "2"
    by_host = {next(b for b in (A, B) if _fingerprint(b) in s["title"]): s for s in got["sections"]}
    assert by_host[A]["dots"] == by_host[B]["dots"] == 60
    assert [(c["from"], c["to"]) for c in by_host[A]["changes"]] == [(commit_sha(29), commit_sha(30))]
    assert by_host[B]["changes"] == []
    (row,) = got["rows"]
    assert "in force" in row and commit_sha(30)[:10] in row

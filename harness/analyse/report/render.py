"""Turn the report's tables and PNGs into a self-contained HTML page and CI-summary Markdown."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:12px auto;max-width:1400px;color:#1d2430;
background:#fff;padding:0 16px}
h1{font-size:1.45em;border-bottom:3px solid #2c6fbb;padding-bottom:4px;margin:0 0 4px}
h2{color:#2c6fbb;font-size:1.25em;margin:0.6em 0 0.3em}h3{font-size:1em;margin:0.8em 0 0.2em}
table{border-collapse:collapse;font-size:12px;margin:4px 0 12px}th,td{border:1px solid #ccd3dc;padding:2px 7px}
th{background:#e9eff7;text-align:left}tr:nth-child(even) td{background:#f7f9fc}td{white-space:nowrap}
td .long{white-space:normal;min-width:16em;max-width:36em}
td.bad{background:#fde2e1!important;color:#9b1c1c;font-weight:600}td.good{background:#e3f6e8!important}
.note{color:#5a6472;font-size:13px;margin:2px 0 4px}.fig{margin:12px 0}.fig img{max-width:100%;border:1px solid #dde3ea}
.gallery figure{display:inline-block;margin:8px;vertical-align:top}.gallery figcaption{font-size:12px}
.gallery img{max-width:100%}tr.muted td{color:#9aa3ad}
.scroll{overflow-x:auto;max-width:100%}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid .fig{flex:1 1 45%;max-width:680px}
.headline{border:1px solid #ccd3dc;border-radius:6px;padding:2px 14px 4px;background:#fbfcfe}
.headline h2{margin-top:0.3em}.headline td{white-space:normal}.headline table{margin-bottom:4px}
details{border-top:1px solid #dde3ea;padding:2px 0}details>summary{cursor:pointer;padding:4px 0}
details>summary h2{display:inline;font-size:1.1em}details[open]>summary{margin-bottom:6px}
"""


def _cell(v: object) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-2 and v != 0 else f"{v:.2f}"
    return str(v)


LONG = 40  # characters: a longer text cell wraps (within bounds) instead of widening its column to one line


def html_table(df: pd.DataFrame, flag: dict[str, object] | None = None, muted: str | None = None,
               empty: str = "no records for this table") -> str:
    """A DataFrame as an escaped HTML table in a box that scrolls sideways when the table is wider than the
    page; cells equal to `flag[column]` are highlighted as bad, and rows whose `muted` column is non-empty
    are greyed out (shown, but not to be read as findings). Cells stay on one line, but long texts wrap."""
    if df is None or df.empty:
        return f'<p class="note">{html.escape(empty)}</p>'
    flag = flag or {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for c in df.columns:
            v = row[c]
            cls = ' class="bad"' if c in flag and v == flag[c] else ""
            text = html.escape(_cell(v))
            if isinstance(v, str) and v.startswith(("http://", "https://")):
                text = f'<a href="{html.escape(v)}">{text}</a>'
            elif len(text) > LONG:
                text = f'<div class="long">{text}</div>'
            cells.append(f"<td{cls}>{text}</td>")
        mute = muted in df.columns and isinstance(row[muted], str) and row[muted] != ""
        body.append(("<tr class=\"muted\">" if mute else "<tr>") + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return f'<p class="note">{html.escape(alt)}: nothing to plot</p>'
    data = base64.b64encode(png).decode()
    return f'<div class="fig"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></div>'


def page(title: str, intro: str, headline: str, sections: Sequence[tuple[str, str]]) -> str:
    """The headline first, open; every other section below it, folded under its heading (a click opens it)."""
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{intro}", headline,
             '<p class="note">Details: each heading below opens its section.</p>']
    parts += [f"<details><summary><h2>{html.escape(h)}</h2></summary><section>{body}</section></details>"
              for h, body in sections]
    parts.append("</body></html>")
    return "\n".join(parts)


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    if df is None or df.empty:
        return "_no records_\n"
    cols = [c for c in (columns or df.columns) if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines) + "\n"

"""Turn the report's tables and PNGs into a self-contained HTML page and CI-summary Markdown."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1400px;color:#1d2430;
background:#fff;padding:0 16px}
h1{font-size:1.6em;border-bottom:3px solid #2c6fbb;padding-bottom:6px}h2{margin-top:2em;color:#2c6fbb}
table{border-collapse:collapse;font-size:12px;margin:8px 0 16px}th,td{border:1px solid #ccd3dc;padding:3px 7px}
th{background:#e9eff7;text-align:left}tr:nth-child(even) td{background:#f7f9fc}
td.bad{background:#fde2e1!important;color:#9b1c1c;font-weight:600}td.good{background:#e3f6e8!important}
.note{color:#5a6472;font-size:13px}.fig{margin:12px 0}.fig img{max-width:100%;border:1px solid #dde3ea}
.gallery figure{display:inline-block;margin:8px;vertical-align:top}.gallery figcaption{font-size:12px}
tr.muted td{color:#9aa3ad}
.scroll{overflow-x:auto}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid .fig{flex:1 1 45%;max-width:680px}
"""


def _cell(v: object) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-2 and v != 0 else f"{v:.2f}"
    return str(v)


def html_table(df: pd.DataFrame, flag: dict[str, object] | None = None, muted: str | None = None) -> str:
    """A DataFrame as an escaped HTML table; cells equal to `flag[column]` are highlighted as bad, and rows
    whose `muted` column is non-empty are greyed out (shown, but not to be read as findings)."""
    if df is None or df.empty:
        return '<p class="note">no records for this table</p>'
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
            cells.append(f"<td{cls}>{text}</td>")
        mute = muted in df.columns and isinstance(row[muted], str) and row[muted] != ""
        body.append(("<tr class=\"muted\">" if mute else "<tr>") + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return f'<p class="note">{html.escape(alt)}: nothing to plot</p>'
    data = base64.b64encode(png).decode()
    return f'<div class="fig"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></div>'


def page(title: str, sections: Sequence[tuple[str, str]], intro: str) -> str:
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{intro}"]
    parts += [f"<section><h2>{html.escape(h)}</h2>{body}</section>" for h, body in sections]
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

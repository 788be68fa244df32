"""Pieces of the HTML pages (the style sheet, the diff chart); ``reporting/folder.py`` writes report.html."""

from __future__ import annotations

import html
import math

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.passed{color:#0a7d2c;font-weight:600}.failed,.error{color:#b00020;font-weight:600}
code{background:#f5f5f5;padding:1px 4px}.small{color:#666;font-size:12px}
"""


def _bar_svg(rows: list[tuple[str, float | None]], title: str) -> str:
    """Horizontal log-scale bars of max abs diff per artifact."""
    vals = [(n, v) for n, v in rows if v is not None and v > 0]
    if not vals:
        return ""
    lo = math.floor(math.log10(min(v for _, v in vals)))
    hi = math.ceil(math.log10(max(v for _, v in vals))) or 1
    hi = max(hi, lo + 1)
    w, row_h, left = 640, 22, 140
    height = row_h * len(vals) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" role="img">',
             f'<text x="{left}" y="14" font-size="12">{html.escape(title)} (log scale, 1e{lo} .. 1e{hi})</text>']
    for i, (name, v) in enumerate(vals):
        frac = (math.log10(v) - lo) / (hi - lo)
        y = 24 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" font-size="12" text-anchor="end">{html.escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{max(2, frac * (w - left - 80)):.1f}" height="{row_h - 6}" fill="#4a78b5"/>')
        parts.append(f'<text x="{left + max(2, frac * (w - left - 80)) + 4:.1f}" y="{y + 13}" font-size="11">{v:.2e}</text>')
    parts.append("</svg>")
    return "".join(parts)

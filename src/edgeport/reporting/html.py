"""report.html: one self-contained page (no external assets) with the tables and a plot of the diffs."""

from __future__ import annotations

import html
import math
from pathlib import Path

from edgeport.fileio import atomic_write_text

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.passed{color:#0a7d2c;font-weight:600}.failed,.error{color:#b00020;font-weight:600}
code{background:#f5f5f5;padding:1px 4px}.small{color:#666;font-size:12px}
"""


def _fmt(v, spec=".3e") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return html.escape(str(v))


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


def render_report(manifest: dict) -> str:
    arts = manifest.get("artifacts", [])
    rows = []
    chart = []
    for a in arts:
        v = a.get("validation") or {}
        outs = v.get("outputs") or {}
        worst = lambda key, f=max: f((o[key] for o in outs.values() if o.get(key) is not None), default=None)  # noqa: E731
        rows.append(
            "<tr>"
            f"<td>{html.escape(a['format'])}</td><td>{_fmt(a.get('file'))}</td>"
            f"<td>{_fmt(a.get('size_bytes'))}</td>"
            f"<td>{_fmt(worst('max_abs_diff'))}</td><td>{_fmt(worst('mean_abs_diff'))}</td>"
            f"<td>{_fmt(worst('cosine_mean', min), '.6f')}</td><td>{_fmt(worst('cosine_worst', min), '.6f')}</td>"
            f"<td>{_fmt(worst('centred_pearson', min), '.4f')}</td><td>{_fmt(worst('top1_agreement', min), '.3f')}</td>"
            f"<td>{_fmt(worst('sqnr_db', min), '.1f')}</td><td>{_fmt(v.get('failed_rows'))}</td>"
            f"<td>{_fmt(a.get('export_seconds'), '.2f')}</td>"
            f"<td class=\"{a['status']}\">{a['status'].upper()}</td></tr>"
        )
        chart.append((a["format"], worst("max_abs_diff")))
    failures = [
        f"<li><b>{html.escape(a['format'])}</b>: "
        + html.escape(a.get("error") or "; ".join((a.get("validation") or {}).get("failures", [])))
        + "</li>"
        for a in arts
        if a["status"] != "passed"
    ]
    fixed = [f"<li><b>{html.escape(a['format'])}</b>: {html.escape(a['batch'])}</li>" for a in arts
             if (a.get("batch") or "").startswith("FIXED")]
    src = manifest.get("source", {})
    io_rows = "".join(
        f"<tr><td>{kind}</td><td>{html.escape(t['name'])}</td><td>{html.escape(str(t['shape']))}</td>"
        f"<td>{html.escape(t['dtype'])}</td></tr>"
        for kind in ("inputs", "outputs")
        for t in manifest.get(kind, [])
    )
    versions = ", ".join(f"{k} {html.escape(v)}" for k, v in manifest.get("versions", {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeport report: {html.escape(manifest.get('model_name', ''))}</title>
<style>{_CSS}</style></head><body>
<h1>edgeport export report: {html.escape(manifest.get('model_name', ''))}</h1>
<p>Source <code>{html.escape(str(src.get('path')))}</code> ({html.escape(str(src.get('framework')))},
family {html.escape(str(src.get('family')))}), sha256 <span class="small">{html.escape(str(src.get('sha256')))}</span>.
Reference inputs: {html.escape(str(manifest.get('reference_inputs')))}.</p>
<p><b>{'All artifacts passed.' if manifest.get('all_passed') else 'Some artifacts did not pass.'}</b></p>
<table><tr><th>format</th><th>file</th><th>bytes</th><th>max diff</th><th>mean diff</th><th>cosine</th>
<th>worst cosine</th><th>centred r</th><th>top-1</th><th>SQNR dB</th><th>failed runs</th><th>export s</th><th>result</th></tr>
{''.join(rows)}</table>
{_bar_svg(chart, 'max abs diff vs source')}
{'<h2>Problems</h2><ul>' + ''.join(failures) + '</ul>' if failures else ''}
{'<h2>Fixed-batch artifacts</h2><ul>' + ''.join(fixed) + '</ul>' if fixed else ''}
<h2>Inputs and outputs</h2><table><tr><th>kind</th><th>name</th><th>shape</th><th>dtype</th></tr>{io_rows}</table>
<p class="small">Command: <code>{html.escape(manifest.get('command_line') or '')}</code><br>{versions}</p>
</body></html>
"""


def write_report(path: Path, manifest: dict) -> None:
    atomic_write_text(path, render_report(manifest))

"""report.html for one or several export folders: one self-contained page (no external assets).

Per folder, from what the folder holds: the export validation table (``validation.json`` / ``manifest.json``),
a bar chart of the diffs (inline SVG), every gate check with its measured figure, the failures with their
reason, per-layer tables (a ``per_layer`` list in an artifact's ``validation.json`` entry), the bench table
and plot (``bench.json``, ``bench.png`` as a data: URI), calibration, inputs and outputs, and the manifest
itself. ``write_folder_report(*folders, out=...)`` is what export, bench and the demo call.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from edgeport.errors import SourceError
from edgeport.fileio import OutputPlan, strict_json
from edgeport.reporting.html import _CSS, _bar_svg

REPORT = "report.html"
#: marks a page edgeport wrote (a later command may replace it without --force)
GENERATOR = '<meta name="generator" content="edgeport">'
_OLD_TITLE = "<title>edgeport report"  # reporting.html's page, before this one
_MORE_CSS = """
h2{margin-top:2em;border-bottom:2px solid #4a78b5}h3{margin-top:1.4em}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:480px;font-size:12px}
td.text,th.text{text-align:left}nav a{margin-right:1em}
body{max-width:none}td{white-space:nowrap}img{max-width:100%}
"""


# --------------------------------------------------------------------------------------- reading


def is_edgeport_report(path: Path) -> bool:
    """True for a regular file that an edgeport command wrote (replaced by a later one without --force)."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8", "replace")
    return GENERATOR in head or _OLD_TITLE in head


def plan_report(plan: OutputPlan, report: Path, *, force: bool) -> None:
    """Check ``plan`` (which names ``report``) before work: every existing output needs ``force`` except a
    report.html edgeport wrote, which is a view of the folder and is rewritten."""
    plan.add(report)
    report = Path(report).absolute()
    blocking = [p for p in plan.existing() if not (p == report and is_edgeport_report(p))]
    plan.force = force or not blocking
    plan.check()


def load_folder(folder: Path | str, *, required: bool = True) -> dict:
    """What a folder holds for its report: manifest, validation, bench (dicts or None), bench plot (bytes);
    ``required``: a folder with neither a manifest nor a bench is refused."""
    from edgeport.fileio import read_json
    from edgeport.reporting.bench_table import BENCH_JSON, BENCH_PLOT

    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: no such folder; give an export folder")
    view = {"folder": folder, "bench_png": None}
    for key, name in (("manifest", "manifest.json"), ("validation", "validation.json"), ("bench", BENCH_JSON)):
        view[key] = read_json(folder / name, name) if (folder / name).is_file() else None
    if (folder / BENCH_PLOT).is_file():
        view["bench_png"] = (folder / BENCH_PLOT).read_bytes()
    if required and view["manifest"] is None and view["bench"] is None:
        raise SourceError(f"{folder} holds no manifest.json or bench.json: give an export folder (or run edgeport "
                          "bench on it first)")
    return view


# --------------------------------------------------------------------------------------- html pieces


def _e(v) -> str:
    return "-" if v is None else html.escape(str(v))


def _n(v, spec: str) -> str:
    """A number in ``spec``; anything else (a hand-edited file) as text, never an exception."""
    if v is None:
        return "-"
    try:
        return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    except ValueError:
        return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence], text_cols: int = 1) -> str:
    """A table; cells are strings (escaped here) or ``(text, css_class)``; the first ``text_cols`` columns
    are left-aligned."""
    def cell(tag: str, c, i: int) -> str:
        text, cls = c if isinstance(c, tuple) else (c, "")
        cls = " ".join(x for x in (cls, "text" if i < text_cols else "") if x)
        return f"<{tag}{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{html.escape(str(text))}</{tag}>"

    head = "".join(cell("th", h, i) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _status(s: str | None) -> tuple[str, str]:
    s = s or "-"
    return s.upper(), s if s in ("passed", "failed", "error") else ""


def _worst(outputs: dict, key: str, pick=max):
    vals = [o[key] for o in (outputs or {}).values() if isinstance(o, dict) and o.get(key) is not None]
    return pick(vals) if vals else None


def _artifacts(view: dict) -> list[dict]:
    """Manifest artifacts, each with its validation.json entry (which may carry ``per_layer``)."""
    manifest, validation = view["manifest"] or {}, (view["validation"] or {}).get("artifacts") or {}
    arts = [dict(a) for a in manifest.get("artifacts") or []]
    for a in arts:
        entry = validation.get(a.get("format")) or {}
        a["validation"] = a.get("validation") or ({k: v for k, v in entry.items() if k not in ("status", "error")}
                                                  if "outputs" in entry else None)
        a["per_layer"] = entry.get("per_layer") or (a.get("validation") or {}).get("per_layer")
    known = {a.get("format") for a in arts}
    for fmt, entry in validation.items():  # validation.json rows the manifest does not list
        if fmt not in known:
            arts.append({"format": fmt, "status": entry.get("status"), "error": entry.get("error"), "file": None,
                         "validation": entry, "per_layer": entry.get("per_layer")})
    return arts


def _export_table(arts: list[dict]) -> str:
    header = ("format", "file", "bytes", "max diff", "mean diff", "cosine", "worst cosine", "pearson", "centred r",
              "top-1", "SQNR dB", "failed runs", "export s", "result")
    rows = []
    for a in arts:
        v = a.get("validation") or {}
        outs = v.get("outputs") or {}
        rows.append((a.get("format"), a.get("file") or "-", _n(a.get("size_bytes"), "d"),
                     _n(_worst(outs, "max_abs_diff"), ".3e"), _n(_worst(outs, "mean_abs_diff"), ".3e"),
                     _n(_worst(outs, "cosine_mean", min), ".6f"), _n(_worst(outs, "cosine_worst", min), ".6f"),
                     _n(_worst(outs, "pearson", min), ".4f"), _n(_worst(outs, "centred_pearson", min), ".4f"),
                     _n(_worst(outs, "top1_agreement", min), ".3f"), _n(_worst(outs, "sqnr_db", min), ".1f"),
                     _n(v.get("failed_rows"), "d"), _n(a.get("export_seconds"), ".2f"), _status(a.get("status"))))
    return _table(header, rows, text_cols=2)


def _gates(arts: list[dict]) -> str:
    rows = []
    for a in arts:
        for c in (a.get("validation") or {}).get("checks") or []:
            rows.append((a.get("format"), f"{c.get('output')}.{c.get('metric')}", _n(c.get("value"), ".6g"),
                         f"{c.get('op')} {_n(c.get('bound'), 'g')}", _status("passed" if c.get("passed") else "failed")))
        for note in (a.get("validation") or {}).get("not_judged") or []:
            rows.append((a.get("format"), note, "-", "-", ("NOT JUDGED", "")))
    if not rows:
        return "<p>No gate checks recorded.</p>"
    table = _table(("artifact", "check", "measured", "gate", "result"), rows, text_cols=2)
    failed = sum(r[-1][0] == "FAILED" for r in rows)
    summary = f"{len(rows)} checks, {failed} failed"
    return f"<p>{summary}.</p>{table}" if len(rows) <= 40 or failed else \
        f"<details><summary>{summary} (show)</summary>{table}</details>"


def _failures(arts: list[dict], bench: dict | None) -> list[str]:
    items = []
    for a in arts:
        if a.get("status") not in (None, "passed"):
            why = a.get("error") or "; ".join((a.get("validation") or {}).get("failures") or []) or "no reason recorded"
            items.append(f"<li><b>{_e(a.get('format'))}</b> ({_e(a.get('status'))}): {_e(why)}</li>")
    for a in (bench or {}).get("artifacts") or []:
        if a.get("error"):
            items.append(f"<li><b>bench {_e(a['name'])}</b> (error): {_e(a['error'])}</li>")
    for s in (bench or {}).get("skipped") or []:
        items.append(f"<li><b>bench {_e(s.get('name'))}</b> (not benched): {_e(s.get('reason'))}</li>")
    return items


def _per_layer(arts: list[dict]) -> str:
    parts = []
    for a in arts:
        layers = a.get("per_layer")
        if isinstance(layers, dict):
            layers = layers.get("layers") or layers.get("rows")
        if not layers or not isinstance(layers, list):
            continue
        rows = [r for r in layers if isinstance(r, dict)]
        header = list(dict.fromkeys(k for r in rows for k in r))
        parts.append(f"<h3>{_e(a.get('format'))}: {len(rows)} layers, worst first</h3>" + _table(
            header, [tuple(_cell(r.get(k)) for k in header) for r in rows], text_cols=1))
    return "".join(parts)


def _cell(v) -> str:
    if isinstance(v, float):
        return format(v, ".4g")
    if isinstance(v, (list, dict)):
        return strict_json(v).replace("\n", " ")
    return "-" if v is None else str(v)


def _bench(bench: dict, png: bytes | None) -> str:
    from edgeport.reporting.bench_table import bench_rows

    s, inp, ref = bench["settings"], bench["inputs"], bench["reference"]
    header, rows = bench_rows(bench)
    img = (f'<p><img alt="size vs latency vs fidelity" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
           "</p>") if png else "<p>No bench plot (run edgeport bench without --no-plots).</p>"
    return (f"<p>{_e(inp.get('rows'))} input rows from {_e(inp.get('source'))}; reference {_e(ref.get('source'))} "
            f"({_e(ref.get('kind'))}). Latency: wall-clock ms per call, {_e(s.get('threads'))} runtime thread(s), "
            f"p50/p90 of {_e(s.get('repeats'))} runs after {_e(s.get('warmup'))} warm-up runs, batch 1 and "
            f"{_e(s.get('batch'))}, {_e(s.get('cpu_count'))} CPU core(s).</p>" + _table(header, rows, text_cols=2) + img)


def _io(manifest: dict) -> str:
    rows = [(kind, t.get("name"), str(t.get("shape")), t.get("dtype")) for kind in ("inputs", "outputs")
            for t in manifest.get(kind) or []]
    return _table(("kind", "name", "shape", "dtype"), rows, text_cols=4) if rows else ""


def _calibration(manifest: dict) -> str:
    cal = manifest.get("calibration")
    if not isinstance(cal, dict):
        return ""
    return "<h3>Calibration</h3>" + _table(("item", "value"), [(k, _cell(v)) for k, v in cal.items()], text_cols=2)


def _fixed_batch(arts: list[dict]) -> str:
    items = [f"<li><b>{_e(a.get('format'))}</b>: {_e(a.get('batch'))}</li>" for a in arts
             if str(a.get("batch") or "").startswith("FIXED")]
    return "<h3>Fixed-batch artifacts</h3><ul>" + "".join(items) + "</ul>" if items else ""


def _section(view: dict, anchor: str, bench_override: tuple[dict, bytes | None] | None) -> str:
    manifest = view["manifest"] or {}
    bench, png = bench_override if bench_override is not None else (view["bench"], view["bench_png"])
    arts = _artifacts(view)
    shown = view.get("label", view["folder"])
    name = manifest.get("model_name") or shown.name
    src = manifest.get("source") or {}
    verdict = ("" if not arts else "<p><b>All artifacts passed.</b></p>" if manifest.get("all_passed")
               else '<p class="failed">Some artifacts did not pass.</p>')
    out = [f'<h2 id="{anchor}">{_e(name)} <span class="small">{_e(shown)}</span></h2>']
    if manifest:
        out.append(f"<p>Source <code>{_e(src.get('path'))}</code> ({_e(src.get('framework'))}, family "
                   f"{_e(src.get('family'))}), sha256 <span class=\"small\">{_e(src.get('sha256'))}</span>. Reference "
                   f"inputs: <code>{_e(strict_json(manifest.get('reference_inputs')).strip())}</code>.</p>{verdict}")
    if arts:
        chart = [(str(a.get("format")), _worst((a.get("validation") or {}).get("outputs") or {}, "max_abs_diff"))
                 for a in arts]
        out += ["<h3>Export validation</h3>", _export_table(arts), _bar_svg(chart, "max abs diff vs source"),
                "<h3>Gates</h3>", _gates(arts)]
    failures = _failures(arts, bench)
    if failures:
        out.append("<h3>Failures</h3><ul>" + "".join(failures) + "</ul>")
    layers = _per_layer(arts)
    if layers:
        out += ["<h3>Per-layer error</h3>", layers]
    if bench:
        out += ["<h3>Bench</h3>", _bench(bench, png)]
    out += [_fixed_batch(arts), _calibration(manifest)]
    if manifest:
        versions = ", ".join(f"{_e(k)} {_e(v)}" for k, v in (manifest.get("versions") or {}).items())
        out += ["<h3>Inputs and outputs</h3>", _io(manifest),
                f"<p class=\"small\">Command: <code>{_e(manifest.get('command_line') or '')}</code><br>{versions}</p>",
                f"<details><summary>manifest.json</summary><pre>{_e(strict_json(manifest))}</pre></details>"]
    return "".join(out)


def render_folder_report(folders: Sequence[Path | str], *, bench: dict | None = None, title: str | None = None,
                         labels: Sequence[Path | str] | None = None) -> str:
    """One page for ``folders``. ``bench`` maps a folder to ``(bench dict, png bytes)`` not yet on disk;
    ``labels``: the folder paths the page shows, one per folder (an export renders its staging folder under
    the export folder's name)."""
    given = {Path(k).resolve(): v for k, v in (bench or {}).items()}
    views = [load_folder(f, required=Path(f).resolve() not in given) for f in folders]
    if not views:
        raise SourceError("no folder given for the report")
    for view, label in zip(views, labels or ()):
        view["label"] = Path(label)
    if title is None:
        names = [(v["manifest"] or {}).get("model_name") or v["folder"].name for v in views]
        title = "edgeport report: " + ", ".join(names)
    nav = ("<nav>" + "".join(f'<a href="#f{i}">{_e((v["manifest"] or {}).get("model_name") or v["folder"].name)}</a>'
                             for i, v in enumerate(views)) + "</nav>") if len(views) > 1 else ""
    sections = "".join(_section(v, f"f{i}", given.get(v["folder"].resolve())) for i, v in enumerate(views))
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>{_e(title)}</title>'
            f"<style>{_CSS}{_MORE_CSS}</style></head><body><h1>{_e(title)}</h1>{nav}{sections}</body></html>\n")


def write_folder_report(*folders: Path | str, out: Path | str | None = None, force: bool = False) -> Path:
    """Write one report.html for ``folders`` (export folders, or folders ``edgeport bench`` wrote) to ``out``
    (default: ``report.html`` in the first folder); replaces a report edgeport wrote, anything else only with
    ``force``. Returns the page's path."""
    if not folders:
        raise SourceError("write_folder_report needs at least one folder")
    out = Path(out) if out is not None else Path(folders[0]) / REPORT
    page = render_folder_report(folders)
    plan = OutputPlan(force=force, what="a file that edgeport did not write",
                      hint="pass --force to replace it or choose another report path")
    with plan:
        plan_report(plan, out, force=force)
        plan.staged(out).write_text(page, encoding="utf-8")
        plan.commit()
    return out

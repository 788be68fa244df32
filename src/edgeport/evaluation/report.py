"""Writes an ``EvaluationResult``: JSON, chunk- and file-level CSVs, confusion and DET PNGs, HTML.

Every file is written atomically (temporary name, then renamed). The HTML page is self-contained:
tables plus the two plots inlined as base64 PNG, no external assets.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path

import numpy as np

from edgeport.errors import MissingDependencyError
from edgeport.evaluation.evaluate import HEADLINE, EvaluationResult
from edgeport.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text

#: output kind -> file name pattern (``{stem}`` is the prefix given to ``write_reports``)
OUTPUT_FILES = {
    "json": "{stem}.json",
    "chunks_csv": "{stem}_chunks.csv",
    "files_csv": "{stem}_files.csv",
    "confusion_png": "{stem}_confusion.png",
    "det_png": "{stem}_det.png",
    "html": "{stem}.html",
}


def _num(v: float) -> str:
    return "" if v is None or not np.isfinite(v) else f"{float(v):.6g}"


# ------------------------------------------------------------------------------------------ CSV


def chunk_predictions_csv(result: EvaluationResult) -> str:
    """One row per chunk: file, chunk index, start/end seconds, failed flag, one score column per class."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "chunk", "start_s", "end_s", "failed", *result.class_names])
    for fid, scores, times in zip(result.file_ids, result.chunk_scores, result.chunk_times, strict=True):
        for k in range(scores.shape[0]):
            ok = bool(np.all(np.isfinite(scores[k])))
            w.writerow([fid, k, _num(times[k, 0]), _num(times[k, 1]), int(not ok), *(_num(v) for v in scores[k])])
    return buf.getvalue()


def file_predictions_csv(result: EvaluationResult) -> str:
    """One row per file: true labels, pooled top-1 and its score, number of chunks, pooled score per class."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "labels", "top1", "top1_score", "n_chunks", "failed_chunks", *result.class_names])
    names = result.class_names
    for i, fid in enumerate(result.file_ids):
        s = result.file_scores[i]
        top = int(np.argmax(s))
        labels = ";".join(names[c] for c in np.flatnonzero(result.y_true[i] > 0))
        chunks = result.chunk_scores[i]
        n_failed = int(np.sum(~np.all(np.isfinite(chunks), axis=1)))
        w.writerow([fid, labels, names[top], _num(s[top]), chunks.shape[0], n_failed, *(_num(v) for v in s)])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- plots


def _figure(size: tuple[float, float]):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("matplotlib", "Evaluation plots", "report") from None
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)  # Agg canvas: no display, no pyplot global state
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def confusion_png(result: EvaluationResult) -> bytes:
    """Top-1 confusion matrix (rows: true, columns: predicted; colour: share of the true row)."""
    conf = result.metrics["confusion"]
    m = np.asarray(conf["matrix"], dtype=np.float64)
    labels = conf["labels"]
    k = len(labels)
    side = min(max(4.0, 0.35 * k + 2), 30.0)
    fig = _figure((side + 1, side))
    ax = fig.add_subplot(1, 1, 1)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true row")
    if k <= 60:
        ax.set_xticks(range(k), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(k), labels, fontsize=8)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")
    acc = conf["accuracy"]
    ax.set_xlabel("predicted (top-1; none below threshold)")
    ax.set_ylabel("true")
    ax.set_title(f"Top-1 confusion, {conf['rows_used']} files"
                 + (f", accuracy {acc:.3f}" if acc is not None else ""), fontsize=10)
    return _png(fig)


_DET_RANGE = (5e-4, 0.995)  # rates outside are drawn on the plot's edge


def _probit(p: np.ndarray) -> np.ndarray:
    from scipy.stats import norm

    return norm.ppf(np.clip(p, *_DET_RANGE))


def det_png(result: EvaluationResult) -> bytes:
    """Micro-averaged DET curve on normal-deviate axes, with the equal error rate marked."""
    det = result.metrics["det"]
    fig = _figure((5.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    ticks = np.array([0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95, 0.99])
    if det["fpr"]:
        ax.plot(_probit(np.asarray(det["fpr"])), _probit(np.asarray(det["fnr"])), lw=1.5, color="#2b5f9e")
        if det["eer"] is not None:
            e = float(_probit(np.asarray([det["eer"]]))[0])
            ax.plot([e], [e], "o", color="#b00020")
            ax.annotate(f"EER {det['eer']:.3f}", (e, e), textcoords="offset points", xytext=(6, 6), fontsize=9)
    else:
        ax.text(0, 0, "no curve: " + det.get("note", "no data"), ha="center")
    pos = _probit(ticks)
    labels = [f"{t:g}" for t in ticks]
    ax.set_xticks(pos, labels, fontsize=8)
    ax.set_yticks(pos, labels, fontsize=8)
    lim = tuple(_probit(np.asarray(_DET_RANGE)))
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.plot(lim, lim, ls=":", color="#999", lw=1)
    ax.grid(alpha=0.3)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("false negative rate")
    ax.set_title("DET curve (micro-averaged over classes)", fontsize=10)
    return _png(fig)


# ----------------------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.warn{color:#b00020;font-weight:600}.small{color:#666;font-size:12px}img{max-width:100%}
"""


def _f(v, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(result: EvaluationResult, images: dict[str, bytes] | None = None) -> str:
    """The report page; ``images`` (title -> PNG bytes) are inlined as base64."""
    m = result.metrics
    d = result.to_dict()
    title = html.escape(str(result.info.get("artifact") or result.info.get("name") or "evaluation"))
    summary = _table(["metric", "value"], [[k, _f(m.get(k))] for k in HEADLINE])
    opt = m["optimised_thresholds"]
    g = opt["global"]
    thresholds = _table(
        ["thresholds", "value", "F1 micro", "F1 macro"],
        [[f"fixed (score &ge; {result.threshold:g})", _f(result.threshold, "g"), _f(m["f1_micro"]), _f(m["f1_macro"])],
         ["best global", _f(g["threshold"], ".4g"), _f(g["f1_micro"]), _f(g["f1_macro"])],
         ["best per class", "see table", _f(opt["per_class_f1_micro"]), _f(opt["per_class_f1_macro"])]],
    )
    has_ci = m.get("species_report") is not None
    header = ["class", "positives", "AP", "ROC-AUC", "precision", "recall", "F1", "best thr", "best F1"]
    if has_ci:
        header[3:3] = [f"AP {round(100 * m['species_report']['ci'])}% CI"]
    rows = []
    for r in m["per_class"]:
        row = [html.escape(r["class"]), str(r["n_positives"]), _f(r["ap"]), _f(r["roc_auc"]), _f(r["precision"]),
               _f(r["recall"]), _f(r["f1"]), _f(r["best_threshold"], ".4g"), _f(r["best_f1"])]
        if has_ci:
            ci = "-" if r["ap_ci_low"] is None else f"{r['ap_ci_low']:.3f} .. {r['ap_ci_high']:.3f}"
            row[3:3] = [ci]
        rows.append(row)
    per_class = _table(header, rows)
    counts = (f"{len(result.file_ids)} files scored ({m['n_noise_rows']} without any label, "
              f"{m['n_multi_label_rows']} with several); {result.total_chunks} chunks, "
              f"{result.failed_chunks} failed; pooling <code>{html.escape(result.pooling)}</code>"
              + (f" (sharpness {result.sharpness:g})" if result.pooling == "lme" else ""))
    warn = ""
    if result.failed_chunks or result.failed_files:
        warn = (f"<p class=\"warn\">{result.failed_chunks} chunks failed to run; {len(result.failed_files)} files "
                "had no chunk that ran and are not in any metric"
                + (": " + html.escape(", ".join(result.failed_files[:50])) if result.failed_files else "") + "</p>")
    excluded = m["excluded"]
    excl = ""
    if excluded["no_positives"] or excluded["no_negatives"]:
        excl = ("<p class=\"small\">Left out of macro averages (no positive file): "
                + html.escape(", ".join(excluded["no_positives"]) or "none")
                + ". Left out of ROC-AUC macro (no negative file): "
                + html.escape(", ".join(excluded["no_negatives"]) or "none") + ".</p>")
    lat = ""
    if result.latency:
        L = result.latency
        rows_l = [["inference, all chunks", _f(L.get("chunks_per_second"), ".1f") + " chunks/s"]]
        for k, v in (L.get("per_chunk_ms") or {}).items():
            rows_l.append([f"per chunk, {k}" + (f" ({L.get('batched_rows')} rows)" if k == "batched" else ""),
                           f"p50 {_f(v.get('p50_ms'), '.3f')} ms, p90 {_f(v.get('p90_ms'), '.3f')} ms"])
        lat = "<h2>Latency</h2>" + _table(["", ""], rows_l)
    imgs = "".join(
        f"<h2>{html.escape(name)}</h2><img alt=\"{html.escape(name)}\" src=\"data:image/png;base64,"
        f"{base64.b64encode(png).decode('ascii')}\">"
        for name, png in (images or {}).items()
    )
    eer = m["det"].get("eer")
    info = "".join(
        f"<li>{html.escape(str(k))}: <code>"
        + html.escape(", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)) + "</code></li>"
        for k, v in d["info"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeport evaluation: {title}</title>
<style>{_CSS}</style></head><body>
<h1>edgeport evaluation: {title}</h1>
<p>{counts}.</p>{warn}
<h2>Summary (file level)</h2>{summary}
<p class="small">Equal error rate (micro): {_f(eer)}; top-1 accuracy over single-label and unlabelled files:
{_f(m['confusion']['accuracy'])}.</p>
<h2>Thresholds</h2>{thresholds}
<p class="small">Best thresholds are tuned on this test set, so their F1 is optimistic.</p>
<h2>Per class</h2>{per_class}{excl}
{lat}{imgs}
<ul class="small">{info}</ul>
</body></html>
"""


# ---------------------------------------------------------------------------------------- write


def report_paths(outdir: Path, stem: str = "evaluation", plots: bool = True) -> dict[str, Path]:
    """kind -> path of every file ``write_reports`` writes."""
    paths = {k: Path(outdir) / v.format(stem=stem) for k, v in OUTPUT_FILES.items()}
    if not plots:
        paths.pop("confusion_png")
        paths.pop("det_png")
    return paths


def plan_reports(outdir: Path, *, stem: str = "evaluation", force: bool = False, extra: tuple[Path, ...] = ()):
    """The ``OutputPlan`` of an evaluation's files (and ``extra`` ones, e.g. --report-json), checked: an
    output folder that is a file or cannot be written, earlier reports without ``force``."""
    from edgeport.fileio import OutputPlan

    plan = OutputPlan(force=force, what="earlier evaluation reports",
                      hint="pass --force to replace them, or choose another --outdir or --stem")
    for p in [*report_paths(outdir, stem).values(), *extra]:
        plan.add(p)
    plan.check()
    return plan


def write_reports(result: EvaluationResult, outdir: Path, *, stem: str = "evaluation", plots: bool = True,
                  plan=None) -> dict[str, Path]:
    """Write every output into ``outdir`` (created if needed); returns kind -> path (see ``OUTPUT_FILES``).
    ``plots=False`` skips the PNGs (and leaves them out of the HTML). With ``plan`` (``plan_reports``) the
    files are staged and moved into place together by the caller's ``plan.commit()``; without, each file
    is replaced atomically."""
    paths = report_paths(outdir, stem, plots)
    dest = {k: (plan.staged(p) if plan is not None else p) for k, p in paths.items()}
    Path(outdir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(dest["json"], result.to_dict())
    atomic_write_text(dest["chunks_csv"], chunk_predictions_csv(result))
    atomic_write_text(dest["files_csv"], file_predictions_csv(result))
    images: dict[str, bytes] = {}
    if plots:
        images["Confusion matrix"] = confusion_png(result)
        images["DET curve"] = det_png(result)
        atomic_write_bytes(dest["confusion_png"], images["Confusion matrix"])
        atomic_write_bytes(dest["det_png"], images["DET curve"])
    atomic_write_text(dest["html"], render_html(result, images))
    return paths


__all__ = [
    "OUTPUT_FILES",
    "chunk_predictions_csv",
    "confusion_png",
    "det_png",
    "file_predictions_csv",
    "plan_reports",
    "render_html",
    "report_paths",
    "write_reports",
]

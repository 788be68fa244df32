"""The library side of ``edgeport demo``: the geo part and the audio part's convert-and-evaluate step.

- ``geo_demo``: fit a non-trivial geo checkpoint to synthetic species range maps and export it to every format;
- ``audio_demo``: train the small DS-CNN on a synthetic bird-call folder (``training/demo.py``), then
  ``convert_and_evaluate_audio``: export it to ``AUDIO_FORMATS`` with ``edgeport.export`` (calibrated and
  validated on the training folder, as ``edgeport export X.keras --data-path-train D``) and evaluate the Keras
  model and every artifact on the held-out test folder (``edgeport evaluate``), ROC-AUC and cmAP of each beside
  the Keras model's.

Each step prints through ``echo``; the exit codes are the export's (1 when an artifact misses its gate or an
audio artifact cannot be evaluated). The images part is ``families/hierarchy/demo.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgeport.sources.keras import NUM_SAMPLES, VALIDATE_SAMPLES

if TYPE_CHECKING:
    from edgeport.export import ExportResult

log = logging.getLogger(__name__)

#: What the audio part converts the trained DS-CNN to.
AUDIO_FORMATS = ("tflite_int8_full", "tflite", "onnx", "onnx_int8_static")
#: the command line recorded in the demo's manifests and reports
COMMAND_LINE = "edgeport demo"


# ------------------------------------------------------------------------------------------------- geo


def geo_demo(out: Path, *, species: int = 200, scale: float = 0.25, steps: int = 600, seed: int = 0,
             echo=print) -> ExportResult:
    """Fit the demo geo checkpoint in ``out/geo/checkpoint`` and export it to every format in ``out/geo/exports``."""
    from edgeport.export import export
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.reporting import format_table

    ckpt_dir = Path(out) / "geo" / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    echo(f"== geo model: fitting a synthetic checkpoint ({species} species, scale {scale}) ==")
    s = make_geo_checkpoint(ckpt_dir / "checkpoint_best.pt", n_species=species, model_scale=scale, steps=steps,
                            seed=seed)
    echo(f"   {s['params']:,} parameters, {s['steps']} steps in {s['seconds']:.0f} s, final loss "
         f"{s['final_loss']:.3f}, range-map MAE {s['map_mae']:.4f}, {s['distinct_top1']} distinct top-1 species "
         "over the reference grid")
    echo("== geo model: export to every format ==")
    result = export(ckpt_dir / "checkpoint_best.pt", formats=("all",), outdir=Path(out) / "geo" / "exports",
                    force=True, command_line=COMMAND_LINE)
    echo(format_table(result.artifacts))
    return result


# ----------------------------------------------------------------------------------------------- audio


def audio_demo(out: Path, *, seed: int = 0, echo=print) -> AudioStepResult:
    """Train the demo DS-CNN in ``out/audio`` and run ``convert_and_evaluate_audio`` on it."""
    from edgeport.training.demo import train_demo

    echo("== audio model: synthetic bird calls (6 species + noise), training a small DS-CNN ==")
    s = train_demo(Path(out) / "audio", seed=seed)
    echo(f"   DS-CNN: validation ROC-AUC {s['val_roc_auc']:.3f}, held-out test ROC-AUC {s['test_roc_auc']:.3f} "
         f"({s['epochs_run']} epochs, {s['seconds_train']:.0f} s)")
    echo(f"   baseline (logistic regression on the mean spectrum): test ROC-AUC {s['baseline_roc_auc']:.3f}")
    echo(f"   model: {s['model_path']}")
    return convert_and_evaluate_audio(s["model_path"], s["train_dir"], s["test_dir"], Path(out) / "audio", seed=seed,
                                      echo=echo)


@dataclass
class AudioEvalRow:
    """One line of the audio evaluation table: the Keras model (``format`` "keras") or one export."""

    format: str
    status: str  # the export status ("passed" | "failed" | "error"); "source" for the Keras model
    path: Path | None = None
    roc_auc: float | None = None
    cmap: float | None = None
    roc_auc_points_vs_keras: float | None = None  # 100 * (ROC-AUC - the Keras model's ROC-AUC)
    chunks_per_second: float | None = None  # the whole evaluation run (batches of 64, first call included)
    ms_per_chunk_batch1: float | None = None  # p50 of 20 timed runs at batch 1 (benchmark_latency)
    files: int | None = None
    chunks: int | None = None
    failed_chunks: int | None = None
    report: Path | None = None
    reason: str | None = None  # why a row has no figures, or what its export missed

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


@dataclass
class AudioStepResult:
    export: ExportResult
    rows: list[AudioEvalRow] = field(default_factory=list)
    seconds_export: float = 0.0
    seconds_evaluate: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every artifact passed its gate (as ``edgeport export``) and every model could be evaluated."""
        unevaluated = any(r.reason and r.reason.startswith("evaluation failed") for r in self.rows)
        return max(self.export.exit_code, int(unevaluated))

    def row(self, fmt: str) -> AudioEvalRow:
        return next(r for r in self.rows if r.format == fmt)


def convert_and_evaluate_audio(
    model_path: Path | str,
    train_dir: Path | str,
    test_dir: Path | str,
    outdir: Path | str,
    *,
    formats: tuple[str, ...] = AUDIO_FORMATS,
    seed: int = 0,
    num_samples: int = NUM_SAMPLES,
    validate_samples: int = VALIDATE_SAMPLES,
    gate_overrides: dict | None = None,
    reports: bool = True,
    plots: bool = True,
    benchmark_latency: bool = True,
    echo=print,
) -> AudioStepResult:
    """Export a trained audio ``.keras`` to ``formats`` and evaluate it and every artifact on ``test_dir``.

    The export is ``edgeport.export(MODEL, data_path=TRAIN_DIR, formats=..., outdir=OUTDIR/exports)`` with its
    defaults: calibration rows and held-out validation chunks come from ``train_dir``; the validation table is
    printed. Then the Keras model and each artifact (a failed one from its ``.failed`` file; an export error
    has no file and no figures) are evaluated on every chunk of ``test_dir`` (``edgeport evaluate``, avg
    pooling) with the model config the export checked; the JSON/CSV/HTML reports go to
    ``OUTDIR/evaluation/<format>.*`` and the table to ``OUTDIR/evaluation/summary.json``. ``exit_code``: the
    export's (the gates), or 1 if a model could not be evaluated; the ROC-AUC column is information, not a gate.
    """
    model_path, outdir = Path(model_path), Path(outdir)
    t0 = time.perf_counter()
    export = export_audio(model_path, train_dir, outdir / "exports", formats=formats, seed=seed,
                          num_samples=num_samples, validate_samples=validate_samples, gate_overrides=gate_overrides,
                          echo=echo)
    step = AudioStepResult(export=export, seconds_export=time.perf_counter() - t0)
    echo(f"   exported in {step.seconds_export:.0f} s to {export.outdir}/ (manifest.json, validation.json, report.html)")

    echo(f"== audio model: evaluating the Keras model and each artifact on the held-out {test_dir} ==")
    t1 = time.perf_counter()
    model_config = export.handle.notes["model_config_file"]
    eval_dir = outdir / "evaluation"
    for row in evaluation_rows(model_path, export):
        evaluate_row(row, test_dir, model_config=model_config, seed=seed, benchmark_latency=benchmark_latency,
                     report_dir=eval_dir if reports else None, plots=plots)
        step.rows.append(row)
    compare_with_keras(step.rows)
    step.seconds_evaluate = time.perf_counter() - t1
    if reports:
        write_summary(eval_dir / "summary.json", step, test_dir=test_dir, model_config=model_config)
    echo(format_eval_table(step.rows))
    echo(f"   {step.rows[0].files} test files, {step.rows[0].chunks} chunks of {test_dir}: ROC-AUC (macro) and cmAP "
         "of the file scores (every chunk, avg pooling); vs keras = 100 x (ROC-AUC - the Keras model's); latency "
         "in each artifact's runtime on this host")
    echo(f"   evaluated in {step.seconds_evaluate:.0f} s" + (f"; reports in {eval_dir}/" if reports else ""))
    return step


def export_audio(model_path: Path, train_dir: Path | str, outdir: Path, *, formats: tuple[str, ...], seed: int,
                 num_samples: int, validate_samples: int, gate_overrides: dict | None, echo=print) -> ExportResult:
    """``edgeport export MODEL --data-path-train TRAIN_DIR --formats ... --outdir OUTDIR --force``; prints the
    validation table."""
    from edgeport.errors import SourceError
    from edgeport.export import export
    from edgeport.families.audio.model_config import config_path_for
    from edgeport.reporting import format_table

    echo(f"== audio model: export to {', '.join(formats)} (calibrated and validated on {train_dir}) ==")
    if not config_path_for(model_path).is_file():
        raise SourceError(f"{model_path.name} has no model config beside it: not an audio model")
    result = export(model_path, formats=formats, outdir=outdir, data_path=train_dir, num_samples=num_samples,
                    validate_samples=validate_samples, gates=gate_overrides, force=True, seed=seed, progress=False,
                    command_line=COMMAND_LINE)
    echo(format_table(result.artifacts))
    return result


def evaluation_rows(model_path: Path, export: ExportResult) -> list[AudioEvalRow]:
    """The Keras model, then one row per artifact with its export status and what it missed."""
    rows = [AudioEvalRow("keras", "source", model_path)]
    for a in export.artifacts:
        reason = a.error if a.status == "error" else (
            "; ".join(a.comparison.failures) if a.status == "failed" and a.comparison is not None else None)
        rows.append(AudioEvalRow(a.format, a.status, a.path, reason=reason))
    return rows


def evaluate_row(row: AudioEvalRow, test_dir: Path | str, *, model_config, seed: int, benchmark_latency: bool,
                 report_dir: Path | None, plots: bool) -> None:
    """Evaluate the row's model on ``test_dir`` and fill in its figures (and its report in ``report_dir``); a
    model that cannot run gets its reason instead, so that one failure does not hide the others' figures."""
    from edgeport.evaluation.audio import evaluate_audio_artifact

    if row.path is None:
        row.reason = row.reason or "no artifact to evaluate"
        return
    try:
        res = evaluate_audio_artifact(row.path, test_dir, model_config=model_config, seed=seed, progress=False,
                                      benchmark_latency=benchmark_latency,
                                      info={"command_line": COMMAND_LINE, "export_status": row.status})
    except Exception as e:  # one model failing to run is reported in the table
        row.reason = f"evaluation failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        log.debug("evaluating %s failed", row.path, exc_info=True)
        return
    m, lat = res.metrics, res.latency or {}
    row.roc_auc, row.cmap = m.get("roc_auc_macro"), m.get("cmap")
    row.files, row.chunks, row.failed_chunks = len(res.file_ids), res.total_chunks, res.failed_chunks
    row.chunks_per_second = lat.get("chunks_per_second")
    if lat.get("per_chunk_ms"):
        row.ms_per_chunk_batch1 = lat["per_chunk_ms"]["batch_1"]["p50_ms"]
    if report_dir is not None:
        from edgeport.evaluation.report import write_reports

        row.report = write_reports(res, report_dir, stem=row.format, plots=plots)["html"]


def compare_with_keras(rows: list[AudioEvalRow]) -> None:
    """``roc_auc_points_vs_keras`` of every artifact row (the first row is the Keras model's)."""
    keras_auc = rows[0].roc_auc
    for row in rows[1:]:
        if row.roc_auc is not None and keras_auc is not None:
            row.roc_auc_points_vs_keras = 100.0 * (row.roc_auc - keras_auc)


def write_summary(path: Path, step: AudioStepResult, *, test_dir, model_config) -> None:
    """The evaluation table as strict JSON."""
    from edgeport.fileio import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"test_folder": str(test_dir), "model_config": str(model_config), "pooling": "avg",
                             "exit_code": step.exit_code, "rows": [r.to_dict() for r in step.rows]})


def format_eval_table(rows: list[AudioEvalRow]) -> str:
    """artifact | export | ROC-AUC | cmAP | ROC-AUC points vs Keras | latency, then one line per reason."""
    from edgeport.reporting.table import columns

    header = ("artifact", "export", "ROC-AUC", "cmAP", "vs keras (pts)", "ms/chunk b1 p50", "chunks/s")

    def num(v, spec: str) -> str:
        text = "-" if v is None else format(v, spec)
        return "+0.00" if text == "-0.00" else text  # a difference below 0.005 points has no sign worth showing

    table = []
    for r in rows:
        name = r.path.name if r.path is not None else r.format
        status = {"source": "source", "passed": "PASS", "failed": "FAIL"}.get(r.status, "ERROR")
        table.append((f"{r.format} ({name})" if r.format != "keras" else name, status, num(r.roc_auc, ".4f"),
                      num(r.cmap, ".4f"), num(r.roc_auc_points_vs_keras, "+.2f"), num(r.ms_per_chunk_batch1, ".3f"),
                      num(r.chunks_per_second, ".0f")))
    out = columns(header, table)
    out += [f"  {r.format}: {r.reason}" for r in rows if r.reason]
    return "\n".join(out)

"""``edgeport demo``: the main job on an embedded default, in minutes on 2 CPU cores.

Two parts, each on data it makes itself (nothing is downloaded):

- geo: fits a non-trivial geo checkpoint to synthetic species range maps and exports it to every format,
  printing the validation table;
- audio: synthesises a labelled bird-call dataset (6 species + noise), trains a small DS-CNN on it and
  reports its ROC-AUC beside a mean-spectrum baseline; then exports the trained model to
  ``AUDIO_FORMATS`` (``edgeport export X.keras --data-path-train D``: calibrated and validated on the
  training folder) and evaluates the Keras model and every artifact on the held-out test folder
  (``edgeport evaluate``), printing ROC-AUC and cmAP of each beside the Keras model's;
- images: a species + disease small CNN fitted on synthetic leaves, exported as the deliverables folder
  (``families/hierarchy/demo.py``), with a few ``edgeport predict`` rows.

Exit code 1 when an artifact of either part misses its gate (or an audio artifact cannot be evaluated).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgeport.sources.keras import NUM_SAMPLES, VALIDATE_SAMPLES

if TYPE_CHECKING:
    from edgeport.export import ExportResult

PARTS = ("geo", "audio", "images")
HELP = "run the main job on built-in synthetic data: build reference models, export and validate every format"
#: What the audio part converts the trained DS-CNN to (issue 4, item 8).
AUDIO_FORMATS = ("tflite_int8_full", "tflite", "onnx", "onnx_int8_static")
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outdir", default="demo_out", help="where the demo writes everything")
    p.add_argument("--force", action="store_true", help="replace an earlier demo in --outdir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--geo-species", type=int, default=200, help="species of the demo geo model")
    p.add_argument("--geo-scale", type=float, default=0.25, help="model_scale of the demo geo model")
    p.add_argument("--geo-steps", type=int, default=600, help="fit steps on the synthetic range maps")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")


def run(args: argparse.Namespace) -> int:
    from edgeport.errors import ConfigError

    out = Path(args.outdir)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out} is not empty; pass --force to replace the earlier demo or choose another --outdir")
    t_start = time.perf_counter()
    code = 0
    if "geo" in args.parts:
        code = max(code, _geo(args, out))
    if "audio" in args.parts:
        code = max(code, _audio(args, out))
    if "images" in args.parts:
        from edgeport.families.hierarchy.demo import run_demo

        code = max(code, run_demo(out, seed=args.seed))
    code = max(code, _predict(args.parts, out))
    verdict = "every artifact passed its gate" if code == 0 else "an artifact missed its gate (exit code 1)"
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s; {verdict}; everything is under {out}/")
    return code


#: the demo location of ``edgeport predict`` (lat, lon, week)
DEMO_PLACE = ("42.4", "-76.5", "20")


def _predict(parts, out: Path) -> int:
    """``edgeport predict`` on one held-out demo recording and one demo location; prints the first lines."""
    from edgeport.cli.main import main

    runs = []
    if "audio" in parts:
        art = out / "audio" / "exports" / "demo_dscnn_quantized.tflite"  # full INT8, config from the manifest
        rec = next(p for p in sorted((out / "audio" / "data" / "test").glob("*/*.wav")) if p.parent.name != "noise")
        runs.append((["predict", str(art), "--input", str(rec), "--outdir", str(out / "predict" / "audio"),
                      "--rtype", "both", "--min-conf", "0.5", "--no-progress"],
                     out / "predict" / "audio" / "edgeport_predictions.csv"))
    if "geo" in parts:
        lat, lon, week = DEMO_PLACE
        runs.append((["predict", str(out / "geo" / "exports" / "geomodel.onnx"), "--lat", lat, "--lon", lon, "--week",
                      week, "--format", "csv", "--outdir", str(out / "predict" / "geo")],
                     out / "predict" / "geo" / "edgeport_species.csv"))
    code = 0
    for argv, table in runs:
        print(f"== edgeport {' '.join(argv)} ==")
        rc = main(argv)
        code = max(code, rc)
        if rc == 0:
            print("\n".join(table.read_text().splitlines()[:6]))
    return code


def _geo(args: argparse.Namespace, out: Path) -> int:
    from edgeport.export import ExportConfig, export_handle
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.reporting import format_table
    from edgeport.sources import load_source

    ckpt_dir = out / "geo" / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    print(f"== geo model: fitting a synthetic checkpoint ({args.geo_species} species, scale {args.geo_scale}) ==")
    summary = make_geo_checkpoint(
        ckpt_dir / "checkpoint_best.pt", n_species=args.geo_species, model_scale=args.geo_scale,
        steps=args.geo_steps, seed=args.seed,
    )
    print(f"   {summary['params']:,} parameters, {summary['steps']} steps in {summary['seconds']:.0f} s, final loss "
          f"{summary['final_loss']:.3f}, range-map MAE {summary['map_mae']:.4f}, {summary['distinct_top1']} distinct "
          f"top-1 species over the reference grid")
    print("== geo model: export to every format ==")
    handle = load_source(ckpt_dir / "checkpoint_best.pt")
    result = export_handle(handle, ExportConfig(formats=("all",), outdir=out / "geo" / "exports", force=True,
                                                 command_line="edgeport demo"))
    print(format_table(result.artifacts))
    return result.exit_code


def _audio(args: argparse.Namespace, out: Path) -> int:
    from edgeport.training.demo import train_demo

    print("== audio model: synthetic bird calls (6 species + noise), training a small DS-CNN ==")
    s = train_demo(out / "audio", seed=args.seed)
    print(f"   DS-CNN: validation ROC-AUC {s['val_roc_auc']:.3f}, held-out test ROC-AUC {s['test_roc_auc']:.3f} "
          f"({s['epochs_run']} epochs, {s['seconds_train']:.0f} s)")
    print(f"   baseline (logistic regression on the mean spectrum): test ROC-AUC {s['baseline_roc_auc']:.3f}")
    print(f"   model: {s['model_path']}")
    step = convert_and_evaluate_audio(s["model_path"], s["train_dir"], s["test_dir"], out / "audio", seed=args.seed)
    return step.exit_code


# ------------------------------------------------------------------ audio: convert + evaluate (one step)


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

    The export is ``edgeport export MODEL --data-path-train TRAIN_DIR --formats ... --outdir OUTDIR/exports``
    with its defaults (the same loader, ``attach_audio_data`` and pipeline): calibration rows and held-out
    validation chunks come from ``train_dir``; the validation table is printed. Then the Keras model and each
    artifact (a failed one from its ``.failed`` file; an export error has no file and no figures) are run
    by ``evaluate_audio_artifact`` on every chunk of ``test_dir`` (``edgeport evaluate``, avg pooling), with
    the model config the export checked (``--benchmark-latency`` when ``benchmark_latency``); the JSON/CSV/
    HTML reports go to ``OUTDIR/evaluation/<format>.*`` and the table to ``OUTDIR/evaluation/summary.json``.
    ``exit_code``: the export's (the gates), or 1 if a model could not be evaluated; the ROC-AUC column is
    information, not a gate.
    """
    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.export import ExportConfig, export_handle
    from edgeport.exporters import ExportOptions
    from edgeport.reporting import format_table
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data

    model_path, outdir = Path(model_path), Path(outdir)
    echo(f"== audio model: export to {', '.join(formats)} (calibrated and validated on {train_dir}) ==")
    t0 = time.perf_counter()
    handle = load_source(model_path)
    if handle.family != "audio":
        from edgeport.errors import SourceError

        raise SourceError(f"{model_path.name} has no model config beside it: not an audio model")
    attach_audio_data(handle, train_dir, num_samples=num_samples, validate_samples=validate_samples, progress=False)
    config = ExportConfig(
        formats=tuple(formats), outdir=outdir / "exports", force=True, reference_rows=validate_samples, seed=seed,
        gate_overrides=gate_overrides or {}, options=ExportOptions(calibration_samples=num_samples),
        command_line="edgeport demo",
    )
    export = export_handle(handle, config)
    step = AudioStepResult(export=export, seconds_export=time.perf_counter() - t0)
    echo(format_table(export.artifacts))
    echo(f"   exported in {step.seconds_export:.0f} s to {export.outdir}/ (manifest.json, validation.json, report.html)")

    echo(f"== audio model: evaluating the Keras model and each artifact on the held-out {test_dir} ==")
    t1 = time.perf_counter()
    model_config = handle.notes["model_config_file"]
    eval_dir = outdir / "evaluation"
    todo = [AudioEvalRow("keras", "source", model_path)]
    for a in export.artifacts:
        reason = a.error if a.status == "error" else (
            "; ".join(a.comparison.failures) if a.status == "failed" and a.comparison is not None else None)
        todo.append(AudioEvalRow(a.format, a.status, a.path, reason=reason))
    for row in todo:
        if row.path is None:
            row.reason = row.reason or "no artifact to evaluate"
            step.rows.append(row)
            continue
        try:
            res = evaluate_audio_artifact(row.path, test_dir, model_config=model_config, seed=seed, progress=False,
                                          benchmark_latency=benchmark_latency,
                                          info={"command_line": "edgeport demo", "export_status": row.status})
        except Exception as e:  # one artifact failing to run must not hide the others' figures
            row.reason = f"evaluation failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
            log.debug("evaluating %s failed", row.path, exc_info=True)
            step.rows.append(row)
            continue
        m, lat = res.metrics, res.latency or {}
        row.roc_auc, row.cmap = m.get("roc_auc_macro"), m.get("cmap")
        row.files, row.chunks, row.failed_chunks = len(res.file_ids), res.total_chunks, res.failed_chunks
        row.chunks_per_second = lat.get("chunks_per_second")
        if lat.get("per_chunk_ms"):
            row.ms_per_chunk_batch1 = lat["per_chunk_ms"]["batch_1"]["p50_ms"]
        if reports:
            from edgeport.evaluation.report import write_reports

            row.report = write_reports(res, eval_dir, stem=row.format, plots=plots)["html"]
        step.rows.append(row)
    keras_auc = step.rows[0].roc_auc
    for row in step.rows[1:]:
        if row.roc_auc is not None and keras_auc is not None:
            row.roc_auc_points_vs_keras = 100.0 * (row.roc_auc - keras_auc)
    step.seconds_evaluate = time.perf_counter() - t1
    if reports:
        from edgeport.fileio import atomic_write_json

        eval_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(eval_dir / "summary.json", {
            "test_folder": str(test_dir), "model_config": str(model_config), "pooling": "avg",
            "exit_code": step.exit_code, "rows": [r.to_dict() for r in step.rows]})
    echo(format_eval_table(step.rows))
    echo(f"   {step.rows[0].files} test files, {step.rows[0].chunks} chunks of {test_dir}: ROC-AUC (macro) and cmAP of the file "
         "scores (every chunk, avg pooling); vs keras = 100 x (ROC-AUC - the Keras model's); latency in each "
         "artifact's runtime on this host")
    echo(f"   evaluated in {step.seconds_evaluate:.0f} s" + (f"; reports in {eval_dir}/" if reports else ""))
    return step


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

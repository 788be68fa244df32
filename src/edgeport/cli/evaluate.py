"""``edgeport evaluate``: an audio classifier artifact on a labelled test folder -> metrics, CSV, plots, HTML, JSON."""

from __future__ import annotations

import argparse
import logging
import sys

from edgeport.cli.args import SIGMOID_CHOICES, add_scoring_arguments

HELP = ("evaluate an audio classifier artifact (.keras, .tflite, .onnx) on a labelled test folder: "
        "ROC-AUC, cmAP, mAP, P/R/F1, per-species AP, thresholds, DET, latency")

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeport.audio.dataset import NOISE_CLASSES
    from edgeport.evaluation.pooling import DEFAULT_LME_SHARPNESS, POOLINGS

    m = p.add_argument_group("model")
    m.add_argument("artifact", nargs="?", default=None, metavar="ARTIFACT",
                   help="model file: .keras, .tflite, .onnx or a SavedModel folder")
    m.add_argument("--checkpoint-path", "--checkpoint_path", "--model-path", dest="checkpoint", default=None,
                   help="the artifact, as an option instead of the positional ARTIFACT")
    m.add_argument("--model-config", "--model_config", dest="model_config", default=None,
                   help="X_model_config.json (default: inferred from the artifact's name or the export's "
                        "manifest.json: X.keras, X.onnx, X_quantized.tflite -> X_model_config.json)")
    add_scoring_arguments(m)
    d = p.add_argument_group("test data")
    d.add_argument("--data-path-test", "--data_path_test", "--test-dir", dest="data_path_test", required=True,
                   help=f"folder with one sub-folder per species ({', '.join(NOISE_CLASSES)} folders give "
                        "all-zero labels)")
    d.add_argument("--max-samples", type=int, default=None, help="max files per class (seeded sample)")
    d.add_argument("--max-duration", type=float, default=None, help="seconds read per file (default: all)")
    d.add_argument("--overlap", type=float, default=0.0,
                   help="seconds shared by consecutive chunks (below the model's chunk duration)")
    d.add_argument("--num-workers", type=int, default=0, help="audio decoding worker processes (0 = in process)")
    e = p.add_argument_group("scoring")
    e.add_argument("--pooling", default="avg", help=f"chunk scores -> file score: {', '.join(POOLINGS.names())}")
    e.add_argument("--lme-sharpness", type=float, default=DEFAULT_LME_SHARPNESS, help="r of lme pooling")
    e.add_argument("--threshold", type=float, default=0.5, help="score >= threshold is a detection (P/R/F1)")
    e.add_argument("--species-report", action="store_true", help="per-species AP with a bootstrap confidence interval")
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (--species-report)")
    e.add_argument("--ci", type=float, default=0.95, help="confidence level of the bootstrap interval")
    e.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of --max-samples")
    e.add_argument("--batch-size", type=int, default=64, help="chunks per inference call")
    e.add_argument("--benchmark-latency", action="store_true",
                   help="time the artifact per chunk at batch 1 and at --batch-size (p50/p90)")
    o = p.add_argument_group("outputs")
    o.add_argument("--outdir", default="evaluation", help="folder for the JSON, CSVs, plots and HTML report")
    o.add_argument("--stem", default="evaluation", help="file name prefix of the outputs")
    o.add_argument("--report-json", default=None, help="also write the JSON report to this path")
    o.add_argument("--force", action="store_true", help="replace earlier reports of the same --stem in --outdir")
    o.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    o.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def summary_lines(result) -> list[str]:
    """The headline figures, the best global threshold and the latency, as printed lines."""
    m = result.metrics
    info = result.info
    lines = [
        (f"{info.get('artifact')} ({info.get('runtime')}) on {len(result.file_ids)} files, {result.total_chunks} "
         f"chunks ({result.failed_chunks} failed), pooling {result.pooling}, sigmoid "
         f"{'applied' if info.get('apply_sigmoid') else 'not applied'}"),
        (f"  ROC-AUC macro {_fmt(m['roc_auc_macro'])}  micro {_fmt(m['roc_auc_micro'])}   cmAP {_fmt(m['cmap'])}"
         f"   mAP {_fmt(m['map'])}"),
        (f"  at threshold {result.threshold:g}: precision {_fmt(m['precision_micro'])}  recall "
         f"{_fmt(m['recall_micro'])}  F1 {_fmt(m['f1_micro'])} (micro); F1 macro {_fmt(m['f1_macro'])}"),
    ]
    g = m["optimised_thresholds"]["global"]
    if g.get("threshold") is not None:
        lines.append(f"  best global threshold {g['threshold']:.4g}: F1 micro {_fmt(g['f1_micro'])} "
                     "(tuned on this test set)")
    if m["det"].get("eer") is not None:
        lines.append(f"  EER {m['det']['eer']:.4f}   top-1 accuracy {_fmt(m['confusion']['accuracy'])}")
    lat = result.latency or {}
    if lat.get("chunks_per_second"):
        line = f"  {lat['chunks_per_second']:.1f} chunks/s"
        for k, v in (lat.get("per_chunk_ms") or {}).items():
            line += f"; per chunk {k}: p50 {v['p50_ms']:.3f} ms, p90 {v['p90_ms']:.3f} ms"
        lines.append(line)
    if m.get("species_report"):
        lines.append("  per-species AP (CI):")
        for r in m["per_class"]:
            if r["ap"] is not None:
                ci = "" if r["ap_ci_low"] is None else f" [{r['ap_ci_low']:.3f}, {r['ap_ci_high']:.3f}]"
                lines.append(f"    {r['class']}: {r['ap']:.4f}{ci}")
    if info.get("skipped_files"):
        lines.append(f"  skipped {len(info['skipped_files'])} unreadable file(s), e.g. {info['skipped_files'][0]}")
    return lines


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeport.errors import ConfigError, SourceError
    from edgeport.evaluation.audio import check_options
    from edgeport.evaluation.report import plan_reports

    if args.artifact and args.checkpoint and args.artifact != args.checkpoint:
        raise ConfigError(f"two artifacts given ('{args.artifact}' and --checkpoint-path '{args.checkpoint}'); "
                          "pass one")
    artifact = args.artifact or args.checkpoint
    if artifact is None:
        raise ConfigError("no artifact given: edgeport evaluate ARTIFACT --data-path-test DIR")
    check_options(pooling=args.pooling, sharpness=args.lme_sharpness, threshold=args.threshold,
                  batch_size=args.batch_size, n_boot=args.n_boot, ci=args.ci, max_duration=args.max_duration,
                  max_files_per_class=args.max_samples, num_workers=args.num_workers, threads=args.threads,
                  overlap=args.overlap)
    if not Path(artifact).exists():
        raise SourceError(f"Artifact not found: {artifact}")
    extra = (Path(args.report_json),) if args.report_json else ()
    with plan_reports(Path(args.outdir), stem=args.stem, force=args.force, extra=extra) as plan:
        return _evaluate_and_write(args, artifact, plan)


def _evaluate_and_write(args: argparse.Namespace, artifact, plan) -> int:
    from pathlib import Path

    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.evaluation.report import write_reports
    from edgeport.fileio import atomic_write_json

    result = evaluate_audio_artifact(
        artifact, args.data_path_test, model_config=args.model_config, overlap=args.overlap, pooling=args.pooling,
        sharpness=args.lme_sharpness, threshold=args.threshold, batch_size=args.batch_size,
        apply_sigmoid=SIGMOID_CHOICES[args.sigmoid], output_name=args.output_name,
        species_report=args.species_report, n_boot=args.n_boot, ci=args.ci, seed=args.seed,
        benchmark_latency=args.benchmark_latency, max_duration=args.max_duration,
        max_files_per_class=args.max_samples, num_workers=args.num_workers, trust_source=args.trust_source,
        threads=args.threads, progress=args.progress, info={"command_line": " ".join(["edgeport", *sys.argv[1:]])},
    )
    paths = write_reports(result, Path(args.outdir), stem=args.stem, plots=args.plots, plan=plan)
    if args.report_json:
        atomic_write_json(plan.staged(Path(args.report_json)), result.to_dict())
    plan.commit(prune=True)  # a rerun with --no-plots drops the earlier plots of this stem
    print("\n".join(summary_lines(result)))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0

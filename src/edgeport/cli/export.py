"""``edgeport export``: a model -> every requested format, each validated against it."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from edgeport.cli.args import add_source_arguments, resolve_source
from edgeport.exporters import FORMATS
from edgeport.exporters.base import CALIBRATION_METHODS, CHOICES, DEVICES
from edgeport.families.audio.representative import SILENT_RMS as SNR_THRESHOLD
from edgeport.sources.keras import NUM_SAMPLES, VALIDATE_SAMPLES

HELP = "export a model to ONNX / TFLite / SavedModel formats and validate each against the source"
DEFAULT_CHECKPOINT = "checkpoints/checkpoint_best.pt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, default=DEFAULT_CHECKPOINT)
    g = p.add_argument_group("formats and output")
    g.add_argument("--formats", nargs="+", default=None, choices=[*FORMATS.names(), "all"],
                   metavar="FORMAT", help=f"formats to write: {', '.join(FORMATS.names())}, or all (default: "
                                          "onnx_fp16; for a .keras source the --quantization format)")
    g.add_argument("--outdir", default=None, help="output directory (default exports)")
    g.add_argument("--force", action="store_true", help="replace earlier exports in --outdir")
    g.add_argument("--fp16-io", "--fp16_io", dest="fp16_io", action="store_true",
                   help="ONNX FP16: make inputs and outputs FP16 too (default keeps them FP32)")
    g.add_argument("--opset", type=int, default=18, help="ONNX opset")
    g.add_argument("--tflite-batch", type=int, default=1,
                   help="batch size baked into TFLite artifacts when the converter needs a static one")
    g.add_argument("--tflite-route", choices=CHOICES["tflite_route"], default="auto",
                   help="PyTorch -> TFLite: savedmodel (dynamic batch, needs TensorFlow), litert-torch (fixed "
                        "--tflite-batch, no TensorFlow), auto (savedmodel, litert-torch if it fails; default)")
    g.add_argument("--per-tensor", "--per_tensor", dest="per_tensor", action="store_true",
                   help="per-tensor instead of per-channel weight quantization")
    g.add_argument("--calibration-samples", type=int, default=256, help="calibration rows for static INT8")
    g.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="minmax",
                   help="static INT8 calibration of the ONNX formats")
    a = p.add_argument_group("Keras audio models (seed 001 convert options)")
    a.add_argument("--model-config", "--model_config", dest="model_config", default=None, metavar="X_model_config.json",
                   help="the .keras model's config (default: X_model_config.json beside X.keras)")
    a.add_argument("--data-path-train", "--data_path_train", dest="data_path_train", default=None, metavar="FOLDER",
                   help="labelled audio folder: representative dataset (calibration) and held-out validation chunks")
    a.add_argument("--quantization", choices=["ptq", "dynamic"], default="ptq",
                   help="without --formats: ptq -> tflite_int8_full (full INT8, calibrated), dynamic -> tflite_int8")
    a.add_argument("--num-samples", "--num_samples", dest="num_samples", type=int, default=NUM_SAMPLES,
                   help="representative dataset size (centre chunks, stratified by class)")
    a.add_argument("--snr-threshold", "--snr_threshold", dest="snr_threshold", type=float, default=SNR_THRESHOLD,
                   help="representative dataset: skip centre chunks below this level (RMS of a raw input, mean |x| "
                        "of a spectrogram input; 0 keeps every chunk)")
    a.add_argument("--validate-samples", "--validate_samples", dest="validate_samples", type=int, default=VALIDATE_SAMPLES,
                   help="held-out chunks (never used for calibration) the artifacts are validated on")
    a.add_argument("--min-cosine-sim", "--min_cosine_sim", dest="min_cosine_sim", type=float, default=None,
                   help="tflite_int8_full mean cosine gate (default 0.95, the gates table)")
    a.add_argument("--output-path", "--output_path", dest="output_path", type=Path, default=None,
                   metavar="DIR/X_quantized.tflite", help="path of the full-INT8 artifact (sets --outdir and --name)")
    a.add_argument("--float-frontend", action="store_true",
                   help="keep the learned frontend (mel mixer / filterbank, magnitude scaling) float in tflite_int8_full")
    a.add_argument("--no-npu-check", dest="npu_check", action="store_false",
                   help="skip the NPU readiness check of tflite_int8_full (channels multiple of 8, raw input size)")
    a.add_argument("--int8-route", choices=CHOICES["int8_route"], default="converter",
                   help="full-INT8 TFLite route for Keras models (docs/dev/tflite-route.md)")
    a.add_argument("--export-onnx", "--export_onnx", dest="export_onnx", action="store_true",
                   help="also write the ONNX FP32 artifact")
    a.add_argument("--report-json", "--report_json", dest="report_json", type=Path, default=None,
                   help="also write the structured conversion report (validation figures per artifact) here")
    from edgeport.families.hierarchy.cli import add_export_arguments

    add_export_arguments(p)
    v = p.add_argument_group("validation")
    v.add_argument("--tol", type=float, default=1e-4, help="max abs diff gate of the FP32 formats")
    v.add_argument("--auto-fallback", action="store_true",
                   help="a tflite_int8_full / onnx_int8_static artifact that misses its gate keeps its worst layers "
                        "float (per-layer report, then one-at-a-time trials) until the gate holds")
    v.add_argument("--fallback-budget", type=int, default=3, metavar="LAYERS",
                   help="most layers --auto-fallback keeps float")
    v.add_argument("--device", choices=DEVICES, default="auto", help="device of the reference model")
    v.add_argument("--reference-inputs", type=Path, default=None, metavar="FILE.npz",
                   help="validate on these inputs (one array per input name) instead of the family's set")
    v.add_argument("--calibration-inputs", type=Path, default=None, metavar="FILE.npz",
                   help="calibration rows for static INT8 formats (one array per input name)")
    v.add_argument("--reference-rows", type=int, default=200, help="rows of the family's reference inputs")
    v.add_argument("--license", default=None, metavar="FILE",
                   help="the model's licence file, copied into the export folder and named in the manifest "
                        "(default: MODEL_LICENSE.txt beside the checkpoint or the factory's module)")
    v.add_argument("--golden-rows", type=int, default=32,
                   help="rows of golden vectors kept in the export folder for on-device regression (default 32)")
    v.add_argument("--seed", type=int, default=0, help="seed of the reference inputs")
    v.add_argument("--batch-validate", "--batch_validate", dest="batch_validate", type=int, default=0, metavar="N",
                   help="validate on N different seeded input sets and report the worst")
    v.add_argument("--gate", action="append", default=None, metavar="FORMAT.METRIC=VALUE",
                   help="override a gate, e.g. onnx_int8.min_cosine=0.98 (see docs/validation.md)")


def check_flags(args: argparse.Namespace) -> None:
    """Ranges and files of the flags, before any model is loaded (one line, exit 2)."""
    from edgeport.export import check_values

    check_values(**{k: getattr(args, k) for k in (
        "validate_samples", "num_samples", "calibration_samples", "reference_rows", "batch_validate", "tflite_batch",
        "opset", "tol", "snr_threshold", "min_cosine_sim", "reference_inputs", "calibration_inputs",
        "model_config")}, data_path=args.data_path_train)


def refuse_unused_flags(args: argparse.Namespace, honoured: set[str], what: str) -> None:
    """Refuse (one line, exit 2) every ``export`` flag given with a value other than its default whose
    destination is not in ``honoured``: a flag a route does not read is an error, never silently ignored."""
    from edgeport.errors import ConfigError

    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    given = [a for a in p._actions if a.option_strings and a.dest not in honoured and a.dest != "help"
             and getattr(args, a.dest, a.default) != a.default]
    if given:
        flags = ", ".join(a.option_strings[0] for a in given)
        raise ConfigError(f"{flags} {'does' if len(given) == 1 else 'do'} not apply to {what}; drop "
                          f"{'it' if len(given) == 1 else 'them'}")


def run(args: argparse.Namespace) -> int:
    from edgeport.export import export
    from edgeport.exporters import parse_gate_overrides
    from edgeport.reporting import format_table
    from edgeport.sources.inputs import parse_input_ranges
    from edgeport.sources.torch import parse_input_shapes

    source = resolve_source(args, DEFAULT_CHECKPOINT)
    if args.family == "hierarchy":
        from edgeport.families.hierarchy.cli import HONOURED, run_export

        # bad input is refused before anything is loaded: flags this export does not read, ranges, gates, formats
        refuse_unused_flags(args, HONOURED, "export --family hierarchy (the ONNX deliverables folder)")
        check_flags(args)
        return run_export(args, source)
    check_flags(args)
    result = export(
        source, formats=args.formats, outdir=args.outdir, data_path=args.data_path_train,
        model_config=args.model_config, output_path=args.output_path, name=args.name, factory=args.factory,
        wrapper=args.wrapper, trust_source=args.trust_source, input_shapes=parse_input_shapes(args.input_shape),
        output_names=tuple(args.output_names or ()), input_ranges=parse_input_ranges(args.input_range),
        quantization=args.quantization, export_onnx=args.export_onnx,
        num_samples=args.num_samples, validate_samples=args.validate_samples, snr_threshold=args.snr_threshold,
        calibration_samples=args.calibration_samples, reference_rows=args.reference_rows,
        gates=parse_gate_overrides(args.gate), min_cosine_sim=args.min_cosine_sim, report_json=args.report_json,
        options={k: getattr(args, k) for k in OPTION_FLAGS},
        force=args.force, tol=args.tol, fp16_io=args.fp16_io, device=args.device,
        reference_inputs=args.reference_inputs, calibration_inputs=args.calibration_inputs, seed=args.seed,
        golden_rows=args.golden_rows, license_file=Path(args.license) if args.license else None,
        batch_validate=args.batch_validate, command_line=shlex.join(["edgeport", *sys.argv[1:]]),
        auto_fallback=args.auto_fallback, fallback_budget=args.fallback_budget,
    )
    print(format_table(result.artifacts))
    print(f"\nwrote {result.outdir}/ (manifest.json, validation.json, report.html)")
    return result.exit_code


#: the flags (destinations) passed to ``export(options=...)``
OPTION_FLAGS = ("opset", "per_tensor", "calibration_method", "tflite_batch", "tflite_route",
                "float_frontend", "npu_check", "int8_route")

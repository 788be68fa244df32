"""``edgeport export``: a model -> every requested format, each validated against it."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from edgeport.cli.args import add_source_arguments, resolve_source
from edgeport.exporters import FORMATS

HELP = "export a model to ONNX / TFLite / SavedModel formats and validate each against the source"
DEFAULT_CHECKPOINT = "checkpoints/checkpoint_best.pt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, default=DEFAULT_CHECKPOINT)
    g = p.add_argument_group("formats and output")
    g.add_argument("--formats", nargs="+", default=["onnx_fp16"], choices=[*FORMATS.names(), "all"],
                   metavar="FORMAT", help=f"formats to write: {', '.join(FORMATS.names())}, or all")
    g.add_argument("--outdir", default="exports", help="output directory")
    g.add_argument("--force", action="store_true", help="replace earlier exports in --outdir")
    g.add_argument("--fp16-io", "--fp16_io", dest="fp16_io", action="store_true",
                   help="ONNX FP16: make inputs and outputs FP16 too (default keeps them FP32)")
    g.add_argument("--opset", type=int, default=18, help="ONNX opset")
    g.add_argument("--tflite-batch", type=int, default=1,
                   help="batch size baked into TFLite artifacts when the converter needs a static one")
    g.add_argument("--per-tensor", "--per_tensor", dest="per_tensor", action="store_true",
                   help="per-tensor instead of per-channel weight quantization")
    g.add_argument("--calibration-samples", type=int, default=256, help="calibration rows for static INT8")
    g.add_argument("--calibration-method", choices=["minmax", "percentile", "entropy"], default="minmax")
    v = p.add_argument_group("validation")
    v.add_argument("--tol", type=float, default=1e-4, help="max abs diff gate of the FP32 formats")
    v.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device of the reference model")
    v.add_argument("--reference-inputs", type=Path, default=None, metavar="FILE.npz",
                   help="validate on these inputs (one array per input name) instead of the family's set")
    v.add_argument("--calibration-inputs", type=Path, default=None, metavar="FILE.npz",
                   help="calibration rows for static INT8 formats (one array per input name)")
    v.add_argument("--reference-rows", type=int, default=200, help="rows of the family's reference inputs")
    v.add_argument("--seed", type=int, default=0, help="seed of the reference inputs")
    v.add_argument("--batch-validate", "--batch_validate", dest="batch_validate", type=int, default=0, metavar="N",
                   help="validate on N different seeded input sets and report the worst")
    v.add_argument("--gate", action="append", default=None, metavar="FORMAT.METRIC=VALUE",
                   help="override a gate, e.g. onnx_int8.min_cosine=0.98 (see docs/validation.md)")


def run(args: argparse.Namespace) -> int:
    from edgeport.export import ExportConfig, export_handle
    from edgeport.exporters import ExportOptions
    from edgeport.reporting import format_table
    from edgeport.sources import load_source
    from edgeport.sources.torch import parse_input_shapes
    from edgeport.validation.gates import parse_gate_overrides

    source = resolve_source(args, DEFAULT_CHECKPOINT)
    options = ExportOptions(
        tol=args.tol, fp16_io=args.fp16_io, opset=args.opset, per_tensor=args.per_tensor,
        calibration_samples=args.calibration_samples, calibration_method=args.calibration_method,
        tflite_batch=args.tflite_batch,
    )
    config = ExportConfig(
        formats=tuple(args.formats), outdir=Path(args.outdir), force=args.force, tol=args.tol,
        fp16_io=args.fp16_io, device=args.device, reference_inputs=args.reference_inputs,
        calibration_inputs=args.calibration_inputs,
        reference_rows=args.reference_rows, seed=args.seed, batch_validate=args.batch_validate,
        gate_overrides=parse_gate_overrides(args.gate), options=options,
        command_line=shlex.join(["edgeport", *sys.argv[1:]]),
    )
    handle = load_source(
        source, factory=args.factory, wrapper=args.wrapper, trust_source=args.trust_source,
        input_shapes=parse_input_shapes(args.input_shape), output_names=tuple(args.output_names or ()),
        name=args.name,
    )
    result = export_handle(handle, config)
    print(format_table(result.artifacts))
    print(f"\nwrote {result.outdir}/ (manifest.json, validation.json, report.html)")
    return result.exit_code

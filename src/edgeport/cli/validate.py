"""``edgeport validate``: an artifact against a reference (its source model or another artifact)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HELP = ("compare an artifact (.onnx, .tflite, .keras, SavedModel, checkpoint) with a reference model on reference "
        "inputs; exit 0 passed, 1 failed, 2 bad input")


def add_arguments(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("models")
    m.add_argument("artifact", metavar="ARTIFACT", help="the model to judge: .onnx, .tflite, .keras, a SavedModel "
                                                         "folder, or a checkpoint with --factory")
    m.add_argument("--reference", required=True, metavar="SOURCE_OR_ARTIFACT",
                   help="what it must behave like: the source (checkpoint, .pt2, .keras, .onnx) or another artifact")
    m.add_argument("--factory", default=None, metavar="MODULE:FUNCTION",
                   help="builds a PyTorch checkpoint's model from its model_config")
    m.add_argument("--wrapper", default=None, metavar="NAME|MODULE:FUNCTION", help="export wrapper of a checkpoint")
    m.add_argument("--trust-source", action="store_true",
                   help="allow loading files that hold Python objects (pickle, Lambda layers)")
    m.add_argument("--input-shape", action="append", default=None, metavar="NAME=DIMS",
                   help="fix symbolic dimensions of a reference input, N for the batch (e.g. x=N,3,32,32)")
    m.add_argument("--output-names", nargs="+", default=None, metavar="NAME",
                   help="names of a PyTorch checkpoint's outputs (as given to export)")
    v = p.add_argument_group("reference inputs and gate")
    v.add_argument("--reference-inputs", type=Path, default=None, metavar="FILE.npz",
                   help="inputs to compare on: one array per input name (default: the reference family's set, "
                        "else seeded random inputs shaped from the reference's input specs)")
    v.add_argument("--input-range", action="append", default=None, metavar="NAME=LO,HI",
                   help="seeded random inputs of NAME drawn uniformly in [LO, HI] (default N(0,1)); repeat per input")
    v.add_argument("--reference-rows", type=int, default=200, help="rows of family or random reference inputs")
    v.add_argument("--seed", type=int, default=0, help="seed of the reference inputs")
    v.add_argument("--tol", type=float, default=1e-4, help="max abs diff gate of the FP32 formats")
    v.add_argument("--gate", action="append", default=None, metavar="FORMAT|METRIC=VALUE",
                   help="the gate: FORMAT picks that format's default (default: inferred from the artifact's file "
                        "type and weight dtypes); METRIC=VALUE (or FORMAT.METRIC=VALUE) overrides one metric, "
                        "e.g. min_cosine=0.98")
    v.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="device of a PyTorch reference")
    v.add_argument("--batch-size", type=int, default=256, help="rows per run")
    v.add_argument("--per-layer", action="store_true",
                   help="per-layer error report (SQNR, RMSE over scale, worst first) of a quantized .tflite/.onnx "
                        "against its float .tflite/.onnx given as --reference")
    v.add_argument("--per-layer-rows", type=int, default=32, help="reference rows the per-layer report runs")
    o = p.add_argument_group("output")
    o.add_argument("--outdir", type=Path, default=None, help="write validation.json into this folder")
    o.add_argument("--report-json", "--report_json", dest="report_json", type=Path, default=None,
                   help="write validation.json to this file")
    o.add_argument("--force", action="store_true", help="replace an earlier validation.json")


def run(args: argparse.Namespace) -> int:
    from edgeport.export import read_npz
    from edgeport.reporting import format_table, gate_text
    from edgeport.sources.inputs import parse_input_ranges
    from edgeport.sources.torch import parse_input_shapes
    from edgeport.validate import ValidateConfig, parse_gate_args, validate

    gate, overrides = parse_gate_args(args.gate)
    if args.reference_inputs is not None:
        read_npz(args.reference_inputs, "--reference-inputs")
    config = ValidateConfig(
        reference_inputs=args.reference_inputs, input_ranges=parse_input_ranges(args.input_range),
        rows=args.reference_rows, seed=args.seed, gate=gate, gate_overrides=overrides, tol=args.tol,
        device=args.device, batch_size=args.batch_size, factory=args.factory, wrapper=args.wrapper,
        trust_source=args.trust_source, input_shapes=parse_input_shapes(args.input_shape),
        output_names=tuple(args.output_names or ()), outdir=args.outdir,
        report_json=args.report_json, force=args.force, command_line=shlex.join(["edgeport", *sys.argv[1:]]),
        per_layer=args.per_layer, per_layer_rows=args.per_layer_rows,
    )
    result = validate(args.artifact, args.reference, config)
    print(format_table([result.table_row()]))
    print(f"\ngate: {result.format} ({gate_text(result.comparison.gate)}), {result.gate_source}")
    print(f"reference inputs: {result.reference_summary['rows']} rows, {result.reference_summary['source']}")
    if result.per_layer_table:
        print("\n" + result.per_layer_table)
    for name in result.files.values():
        print(f"wrote {name}")
    return result.exit_code

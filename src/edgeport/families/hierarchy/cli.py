"""Command-line glue of the hierarchy family: the export options, ``export --family hierarchy``,
``predict --model-dir`` and ``ood fit``. The ``edgeport.cli`` modules call these."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("species + disease image models (--family hierarchy)")
    g.add_argument("--family", default=None, choices=["hierarchy"],
                   help="hierarchy: write the species + disease deliverables folder (needs --data-path-train IMAGES/)")
    g.add_argument("--heads-attr", default="disease_heads", help="nn.ModuleDict of per-species disease heads")
    g.add_argument("--labels", type=Path, default=None, help="species names, one per line, in training order")
    g.add_argument("--disease-labels", type=Path, default=None, metavar="FILE.json", help="{species: [diseases]}")
    g.add_argument("--image-size", type=int, default=None,
                   help="input side (default: the checkpoint's image_size, else 224)")
    g.add_argument("--resize", type=int, default=None, help="shorter side before the centre crop (default: image size)")
    g.add_argument("--mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"), help="default ImageNet's")
    g.add_argument("--std", type=float, nargs=3, default=None, metavar=("R", "G", "B"), help="default ImageNet's")
    g.add_argument("--ood-percentile", type=float, default=95.0, help="OOD threshold: this percentile of training distances")
    g.add_argument("--ood-estimator", choices=["ledoit_wolf", "oas"], default="ledoit_wolf")


#: the ``export`` flags (destinations) the hierarchy export reads; any other flag given is refused, not ignored
HONOURED = {"source", "checkpoint", "factory", "trust_source", "name", "formats", "outdir", "force", "opset",
            "per_tensor", "calibration_samples", "calibration_method", "data_path_train", "family", "heads_attr",
            "labels", "disease_labels", "image_size", "resize", "mean", "std", "ood_percentile", "ood_estimator",
            "tol", "gate"}


def run_export(args: argparse.Namespace, source: str) -> int:
    """``export --family hierarchy``, once ``edgeport.cli.export`` has refused the flags outside ``HONOURED``
    and checked the values."""
    from edgeport.exporters import parse_gate_overrides
    from edgeport.families.hierarchy.deliverables import verification_table
    from edgeport.families.hierarchy.export import export_hierarchy
    from edgeport.reporting import format_table

    result = export_hierarchy(
        source, data_path=args.data_path_train, formats=args.formats, outdir=args.outdir, name=args.name,
        force=args.force, factory=args.factory, trust_source=args.trust_source, heads_attr=args.heads_attr,
        labels=args.labels, disease_labels=args.disease_labels, image_size=args.image_size, resize=args.resize,
        mean=args.mean, std=args.std, ood_percentile=args.ood_percentile, ood_estimator=args.ood_estimator,
        tol=args.tol, opset=args.opset, per_tensor=args.per_tensor, calibration_samples=args.calibration_samples,
        calibration_method=args.calibration_method, gates=parse_gate_overrides(args.gate),
        command_line=shlex.join(["edgeport", *sys.argv[1:]]),
    )
    print(format_table(result.artifacts))
    print()
    print(verification_table(result.verification))
    print(f"\nwrote {result.outdir}/ (species*.onnx, disease-heads/, disease-heads-fused*.onnx, disease-heads-list.json, "
          "ood-detector.*, onnx-metadata.json, manifest.json, validation.json)")
    return result.exit_code


def run_predict(args: argparse.Namespace) -> int:
    from edgeport.errors import ConfigError
    from edgeport.families.hierarchy.predict import Predictor, format_predictions

    if not args.images:
        raise ConfigError("no images given: pass image files or a folder after --model-dir DIR")
    pred = Predictor(args.model_dir, precision=args.precision, heads=args.heads, top_k=args.top_k)
    preds = pred.predict(args.images)
    if args.json:
        print(json.dumps({"precision": pred.precision, "heads": pred.heads_mode,
                          "predictions": [p.to_dict() for p in preds]}, indent=2))
    else:
        print(format_predictions(preds))
    return 0


def add_ood_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ood_command", metavar="ACTION", required=True)
    f = sub.add_parser("fit", help="refit the OOD detector of a deliverables folder")
    f.add_argument("--model-dir", type=Path, required=True, help="a folder written by export --family hierarchy")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", type=Path, default=None, help="image folder: embeddings from the FP32 species model")
    src.add_argument("--embeddings", type=Path, default=None, metavar="X.npy", help="(N, D) float embeddings")
    f.add_argument("--ood-percentile", type=float, default=95.0)
    f.add_argument("--ood-estimator", choices=["ledoit_wolf", "oas"], default="ledoit_wolf")


def run_ood(args: argparse.Namespace) -> int:
    from edgeport.families.hierarchy.deliverables import refit_ood

    det, check = refit_ood(args.model_dir, images=args.images, embeddings=args.embeddings,
                       percentile=args.ood_percentile, estimator=args.ood_estimator)
    print(f"OOD detector refitted on {det.n_fit} embeddings ({det.dim}-dim, {det.estimator}): threshold "
          f"{det.threshold:.6g} ({det.percentile:g}th percentile); ONNX vs numpy max relative diff "
          f"{check['max_rel_diff']:.2e} (gate {check['gate']:g})")
    return 0 if check["passed"] else 1

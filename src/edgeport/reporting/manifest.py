"""manifest.json and validation.json: everything a deployer needs to trust and trace an export."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from edgeport import __version__
from edgeport.fileio import atomic_write_json, sha256_path
from edgeport.reporting.table import batch_text
from edgeport.reporting.versions import package_versions

_PACKAGES = (
    "torch", "tensorflow-cpu", "keras", "onnx", "onnxruntime", "onnxconverter-common", "onnxscript",
    "ai-edge-litert", "litert-torch", "ai-edge-quantizer", "onnx2tf", "tf2onnx", "numpy",
)


def framework_versions() -> dict[str, str]:
    return {"edgeport": __version__, "python": platform.python_version(), **package_versions(_PACKAGES)}


def _labels_count(result) -> int | None:
    f = result.handle.labels_file
    if f is None:
        return None
    with open(f, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def build_manifest(result, config) -> dict:
    h = result.handle
    src = h.source_path
    return {
        "edgeport_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command_line": config.command_line,
        "source": {
            "path": str(src) if src else None,
            "sha256": sha256_path(src) if src and src.exists() else None,
            "framework": h.framework,
            "family": h.family,
            "model_config": h.config,
        },
        "model_name": h.name,
        "inputs": [t.to_dict() for t in h.inputs],
        "outputs": [t.to_dict() for t in h.outputs],
        "labels": {"file": "labels.txt", "count": _labels_count(result)} if h.labels_file else None,
        "license_file": h.license_file.name if h.license_file else None,
        "keep_float": list(h.keep_float),
        "calibration": h.notes.get("calibration"),
        "reference_inputs": result.reference_summary,
        "options": config.options.to_dict() | {"tol": config.tol, "fp16_io": config.fp16_io},
        "artifacts": [a.to_dict(result.outdir) | {"batch": batch_text(a.notes)} for a in result.artifacts],
        "all_passed": result.passed,
        "versions": framework_versions(),
    }


def write_outputs(result, config, into=None) -> None:
    """validation.json, manifest.json and report.html, each written atomically, into ``into`` (the export's
    staging folder) or the export folder."""
    from pathlib import Path

    from edgeport.fileio import atomic_write_text
    from edgeport.reporting.folder import REPORT, render_folder_report

    out = Path(into) if into is not None else result.outdir
    validation = {
        "all_passed": result.passed,
        "reference_inputs": result.reference_summary,
        "artifacts": {
            a.format: {
                "status": a.status,
                "error": a.error,
                "worst_seed": a.worst_seed,
                "batch_validate": a.seeds,
                **(a.comparison.to_dict() if a.comparison is not None else {}),
            }
            for a in result.artifacts
        },
    }
    atomic_write_json(out / "validation.json", validation)
    manifest = build_manifest(result, config)
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_text(out / REPORT, render_folder_report([out], labels=[result.outdir]))
    result.files = {"manifest": out / "manifest.json", "validation": out / "validation.json", "report": out / REPORT}

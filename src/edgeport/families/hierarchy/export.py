"""``edgeport.export(source, family="hierarchy", ...)`` and ``edgeport export --family hierarchy``: a species +
disease checkpoint -> the deliverables folder (``deliverables.py``), every value checked before the checkpoint
is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeport.errors import ConfigError


def export_hierarchy(source, *, data_path: str | Path | None, formats: Sequence[str] | None = None,
                     outdir: str | Path | None = None, name: str | None = None, force: bool = False, factory=None,
                     trust_source: bool = False, heads_attr: str = "disease_heads", labels: str | Path | None = None,
                     disease_labels: str | Path | None = None, image_size: int | None = None,
                     resize: int | None = None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                     ood_percentile: float = 95.0, ood_estimator: str = "ledoit_wolf", tol: float = 1e-4,
                     opset: int = 18, per_tensor: bool = False, calibration_samples: int = 256,
                     calibration_method: str = "minmax", gates: dict | None = None, command_line: str = ""):
    """Write the deliverables folder of ``source`` in ``outdir`` (default ``exports``); returns the
    ``HierarchyResult``. Bad values, non-ONNX formats, a missing ``data_path`` and earlier outputs without
    ``force`` are refused before anything is loaded."""
    from edgeport.exporters import ExportOptions, check_gate_overrides
    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.deliverables import (
        DEFAULT_FORMATS,
        NEEDS_DATA,
        ONNX_FORMATS,
        HierarchyConfig,
        export_deliverables,
        plan_deliverables,
        resolve_formats,
    )
    from edgeport.families.hierarchy.images import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        Preprocessing,
    )

    for flag, value in (("--image-size", image_size), ("--resize", resize)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if std is not None and not all(v > 0 for v in std):
        raise ConfigError(f"--std must be three positive numbers, got {list(std)}")
    if not 0 < ood_percentile < 100:
        raise ConfigError(f"--ood-percentile must be between 0 and 100, got {ood_percentile:g}")
    gates = dict(gates or {})
    check_gate_overrides(gates)
    other = sorted(set(gates) - set(ONNX_FORMATS))
    if other:
        raise ConfigError(f"--gate {other[0]}: the hierarchy family's deliverables are ONNX only; gate one of "
                          f"{list(ONNX_FORMATS)}")
    formats = tuple(formats or DEFAULT_FORMATS)
    specs = resolve_formats(formats)  # refuse non-ONNX names before loading anything
    if data_path is None:
        raise ConfigError(NEEDS_DATA)
    if not Path(data_path).is_dir():
        raise ConfigError(f"--data-path-train {data_path} is not a folder")
    outdir = Path(outdir or "exports")
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"--outdir {outdir} is a file; choose a directory")
    plan_deliverables(outdir, name or "species", specs, force)  # earlier outputs: refused before loading
    src = load_hierarchy(source, factory=factory, trust_source=trust_source, heads_attr=heads_attr,
                         labels=labels, disease_labels=disease_labels, image_size=image_size)
    pre = Preprocessing(size=src.image_size, resize=resize, mean=tuple(mean or IMAGENET_MEAN),
                        std=tuple(std or IMAGENET_STD))
    cfg = HierarchyConfig(
        formats=formats, outdir=outdir, data_path_train=Path(data_path), name=name or "species", force=force,
        tol=tol, ood_percentile=ood_percentile, ood_estimator=ood_estimator, preprocessing=pre,
        gate_overrides=gates,
        options=ExportOptions(tol=tol, opset=opset, per_tensor=per_tensor, calibration_samples=calibration_samples,
                              calibration_method=calibration_method),
        command_line=command_line,
    )
    return export_deliverables(src, cfg)

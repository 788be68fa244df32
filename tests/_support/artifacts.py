"""One export per (model, format, batch) per test process, shared by tests/exporters and tests/runtimes."""

from __future__ import annotations

from pathlib import Path

from edgeport.exporters import FORMATS, ExportOptions, get_exporter

from .torch_models import geo_handle, multi_handle

#: Formats exported from PyTorch that pass their gate on both test models.
TORCH_FORMATS = ("onnx", "onnx_fp16", "onnx_int8", "onnx_int8_static", "tflite", "tflite_fp16", "tflite_int8", "tf")
#: Full-integer TFLite passes its gate on the geo model (encoding float, float I/O, float sigmoid), not on
#: the two-output toy whose raw inputs go straight into integer layers (docs/dev/tflite-route.md).
GEO_FORMATS = (*TORCH_FORMATS, "tflite_int8_full")

_HANDLES: dict = {}
_CACHE: dict = {}


def handle(kind: str):
    if kind not in _HANDLES:
        _HANDLES[kind] = {"geo": geo_handle, "multi": multi_handle}[kind]()
    return _HANDLES[kind]


def export(base: Path, kind: str, fmt_name: str, **opts):
    """(handle, artifact path, notes), built once per process."""
    key = (kind, fmt_name, tuple(sorted(opts.items())))
    if key not in _CACHE:
        spec = FORMATS.get(fmt_name)
        tag = "_".join(f"{k}{v}" for k, v in sorted(opts.items()))
        path = Path(base) / f"{kind}_{fmt_name}{tag}{spec.extension or '_savedmodel'}"
        h = handle(kind)
        notes = get_exporter(spec)(h, fmt=spec, path=path, options=ExportOptions(**opts))
        _CACHE[key] = (h, path, notes)
    return _CACHE[key]

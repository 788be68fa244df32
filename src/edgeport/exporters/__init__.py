"""The format registry: every artifact edgeport can write, each one ``FormatSpec`` with its default gate.

Exporter modules (``onnx.py``, ``tflite.py``, ``saved_model.py``) are imported only when used, so that
the CLI starts without TensorFlow or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from edgeport.errors import ConfigError, UnsupportedFormatError
from edgeport.exporters.base import ExportOptions, FormatSpec
from edgeport.registry import Registry
from edgeport.validation.gates import METRICS, Gate

FORMATS: Registry[FormatSpec] = Registry("format", UnsupportedFormatError)

_ALL = frozenset({"torch", "keras", "onnx"})
_FROM_GRAPH = frozenset({"torch", "keras", "onnx"})  # onnx: through onnx2tf (exporters/tflite.py)
#: default gates (SPEC §2). FP32: the bound is the user's --tol (1e-4 by default). Every reduced-precision
#: format keeps float32 inputs and outputs (seed 001's rule) unless --fp16-io asks for FP16 ones.
_EXACT = Gate(max_abs_diff=1e-4, max_abs_diff_tol=True)
_FP16 = Gate(max_abs_diff=0.06, float32_io=True)
_INT8 = Gate(min_cosine=0.99, min_top1=0.98, float32_io=True)

for _spec in (
    FormatSpec("onnx", "onnx", "fp32", "", ".onnx", "onnxruntime", _ALL, _EXACT,
               description="ONNX FP32, dynamic batch"),
    FormatSpec(
        "onnx_fp16", "onnx", "fp16", "_fp16", ".onnx", "onnxruntime", _ALL, _FP16,
        fp16_io_gate=Gate(max_abs_diff=0.05),
        description="ONNX FP16 weights and activations, FP32 I/O unless --fp16-io, fragile ops kept FP32",
    ),
    FormatSpec(
        "onnx_int8", "onnx", "int8_dynamic", "_int8", ".onnx", "onnxruntime", _ALL, _INT8,
        description="ONNX INT8 weights, dynamic activations (ONNX Runtime dynamic quantization)",
    ),
    FormatSpec(
        "onnx_int8_static", "onnx", "int8_static", "_int8_static", ".onnx", "onnxruntime", _ALL, _INT8,
        needs_calibration=True, description="ONNX QDQ INT8 weights and activations, calibrated",
    ),
    FormatSpec("tflite", "tflite", "fp32", "", ".tflite", "litert", _FROM_GRAPH, _EXACT, description="TFLite FP32"),
    FormatSpec("tflite_fp16", "tflite", "fp16", "_fp16", ".tflite", "litert", _FROM_GRAPH, _FP16,
               description="TFLite FP16 weights"),
    FormatSpec("tflite_int8", "tflite", "int8_dynamic", "_int8", ".tflite", "litert", _FROM_GRAPH, _INT8,
               description="TFLite dynamic-range INT8 (INT8 weights, float activations)"),
    FormatSpec(
        "tflite_int8_full", "tflite", "int8_full", "_quantized", ".tflite", "litert", _FROM_GRAPH,
        Gate(min_cosine=0.95, min_pearson=0.95, min_centred_pearson=0.9, min_top1=0.9, float32_io=True),
        needs_calibration=True, description="TFLite full-integer INT8 internals, float32 I/O, calibrated",
    ),
    FormatSpec("tf", "saved_model", "fp32", "", "", "tf", _FROM_GRAPH, _EXACT, description="TF SavedModel directory",
               fixed_name="saved_model"),
):
    FORMATS.register(_spec.name, _spec)


def get_exporter(fmt: FormatSpec) -> Callable:
    """The ``export`` function of the module that writes this format."""
    module = importlib.import_module(f"edgeport.exporters.{fmt.backend}")
    return module.export


def gate_for(format_name: str, *, tol: float = 1e-4, fp16_io: bool = False,
             overrides: dict[str, dict[str, float]] | None = None) -> Gate:
    """The gate in force for a registered format, after ``--tol`` and any ``--gate FORMAT.METRIC=VALUE``."""
    try:
        spec = FORMATS.get(format_name)
    except UnsupportedFormatError:
        raise ConfigError(f"no gate defined for format '{format_name}'. Known: {sorted(FORMATS.names())}") from None
    return spec.gate_for(tol=tol, fp16_io=fp16_io, overrides=overrides)


def parse_gate_overrides(items: list[str] | None) -> dict[str, dict[str, float]]:
    """``["tflite_int8.min_cosine=0.98"]`` -> ``{"tflite_int8": {"min_cosine": 0.98}}``, every format name,
    metric name and value checked (``check_gate_overrides``)."""
    out: dict[str, dict[str, float]] = {}
    for item in items or []:
        try:
            key, value = item.split("=", 1)
            fmt, metric = key.split(".", 1)
            out.setdefault(fmt, {})[metric] = int(value) if metric == "max_failed_rows" else float(value)
        except ValueError:
            raise ConfigError(f"--gate expects FORMAT.METRIC=VALUE (e.g. onnx_int8.min_cosine=0.98), got '{item}'") from None
    check_gate_overrides(out)
    return out


def check_gate_overrides(overrides: dict[str, dict[str, float]], flag: str = "--gate") -> None:
    """Refuse, before any work, an unknown format or metric name and a value no artifact can meet."""
    for fmt, values in overrides.items():
        if fmt not in FORMATS:
            raise ConfigError(f"{flag}: unknown format '{fmt}'; known: {', '.join(FORMATS.names())}")
        unknown = sorted(set(values) - set(METRICS))
        if unknown:
            raise ConfigError(f"{flag}: unknown metric(s) {unknown} for {fmt}; known: {', '.join(sorted(METRICS))}")
        try:
            FORMATS.get(fmt).gate.override(**values)
        except ConfigError as e:
            raise ConfigError(f"{flag} {fmt}: {e}") from None


__all__ = ["FORMATS", "ExportOptions", "FormatSpec", "check_gate_overrides", "gate_for", "get_exporter",
           "parse_gate_overrides"]

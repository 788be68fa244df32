"""The format registry: every artifact edgeport can write, each one ``FormatSpec``.

Exporter modules (``onnx.py``, ``tflite.py``, ``saved_model.py``) are imported only when used, so that
the CLI starts without TensorFlow or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from edgeport.errors import UnsupportedFormatError
from edgeport.exporters.base import ExportOptions, FormatSpec
from edgeport.registry import Registry

FORMATS: Registry[FormatSpec] = Registry("format", UnsupportedFormatError)

_ALL = frozenset({"torch", "keras", "onnx"})
_FROM_GRAPH = frozenset({"torch", "keras", "onnx"})  # onnx: through onnx2tf (exporters/tflite_onnx.py)

for _spec in (
    FormatSpec("onnx", "onnx", "fp32", "", ".onnx", "onnxruntime", _ALL, description="ONNX FP32, dynamic batch"),
    FormatSpec(
        "onnx_fp16", "onnx", "fp16", "_fp16", ".onnx", "onnxruntime", _ALL,
        description="ONNX FP16 weights and activations, FP32 I/O unless --fp16-io, fragile ops kept FP32",
    ),
    FormatSpec(
        "onnx_int8", "onnx", "int8_dynamic", "_int8", ".onnx", "onnxruntime", _ALL,
        description="ONNX INT8 weights, dynamic activations (ONNX Runtime dynamic quantization)",
    ),
    FormatSpec(
        "onnx_int8_static", "onnx", "int8_static", "_int8_static", ".onnx", "onnxruntime", _ALL,
        needs_calibration=True, description="ONNX QDQ INT8 weights and activations, calibrated",
    ),
    FormatSpec("tflite", "tflite", "fp32", "", ".tflite", "litert", _FROM_GRAPH, description="TFLite FP32"),
    FormatSpec("tflite_fp16", "tflite", "fp16", "_fp16", ".tflite", "litert", _FROM_GRAPH,
               description="TFLite FP16 weights"),
    FormatSpec("tflite_int8", "tflite", "int8_dynamic", "_int8", ".tflite", "litert", _FROM_GRAPH,
               description="TFLite dynamic-range INT8 (INT8 weights, float activations)"),
    FormatSpec(
        "tflite_int8_full", "tflite", "int8_full", "_quantized", ".tflite", "litert", _FROM_GRAPH,
        needs_calibration=True, description="TFLite full-integer INT8 internals, float32 I/O, calibrated",
    ),
    FormatSpec("tf", "saved_model", "fp32", "", "", "tf", _FROM_GRAPH, description="TF SavedModel directory",
               fixed_name="saved_model"),
):
    FORMATS.register(_spec.name, _spec)


def get_exporter(fmt: FormatSpec) -> Callable:
    """The ``export`` function of the module that writes this format."""
    module = importlib.import_module(f"edgeport.exporters.{fmt.backend}")
    return module.export


__all__ = ["FORMATS", "ExportOptions", "FormatSpec", "get_exporter"]

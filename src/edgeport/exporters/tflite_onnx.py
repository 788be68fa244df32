"""The FP32 TFLite flatbuffer of an ONNX source: onnx2tf SavedModel (the ``tf`` format's route) -> TFLite
converter with builtin operators only.

Every TFLite precision of an ONNX source starts from this flatbuffer (``tflite.float_flatbuffer`` caches it
per handle); FP16 and INT8 then go through ai-edge-quantizer exactly as for PyTorch sources. A source with a
fixed batch keeps it (``fixed_batch``); a symbolic batch must come out as -1. litert-torch, the PyTorch
fallback, does not apply: when onnx2tf or the converter fails, the TFLite formats are refused with the
reason and the ONNX formats are unaffected.
"""

from __future__ import annotations

import time

from edgeport.errors import ConversionError, EdgeportError
from edgeport.exporters.base import ExportOptions
from edgeport.sources.base import ModelHandle

ROUTE = "ONNX source -> onnx2tf SavedModel -> TFLiteConverter (builtins)"


def float_flatbuffer(handle: ModelHandle, options: ExportOptions) -> tuple[bytes, dict]:
    """FP32 TFLite bytes of an ONNX source and their notes (``route``, ``dynamic_batch``, ``fixed_batch``)."""
    from edgeport.exporters.tflite import _dynamic_batch, savedmodel_tflite

    if options.tflite_route == "litert-torch":
        raise ConversionError("--tflite-route litert-torch converts PyTorch modules; an ONNX source goes through "
                              "onnx2tf (--tflite-route auto or savedmodel)")
    t0 = time.perf_counter()
    try:
        data = savedmodel_tflite(handle, options)
    except ImportError as e:
        raise ConversionError(f"TFLite from an ONNX source needs TensorFlow and onnx2tf ({e})") from e
    except EdgeportError as e:
        raise ConversionError(f"no TFLite artifact from this ONNX file: {e} (the ONNX formats do not depend on "
                              "it)") from e
    fixed = handle.notes.get("fixed_batch")
    if fixed is None and not _dynamic_batch(data):
        raise ConversionError("the ONNX source has a symbolic batch but the converted TFLite model does not (no -1 "
                              "in its shape signature)")
    return data, {"route": ROUTE, "dynamic_batch": fixed is None, "fixed_batch": fixed,
                  "float_convert_seconds": round(time.perf_counter() - t0, 3)}

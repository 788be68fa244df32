"""TFLite artifacts from PyTorch and ONNX sources with a dynamic batch: torch -> ONNX (dynamo) -> onnx2tf
SavedModel -> TFLite converter (builtin ops only; an ONNX source enters at onnx2tf), then ai-edge-quantizer for
FP16/INT8 on that float flatbuffer.

Route chosen by measurement (docs/dev/tflite-route.md, ``benchmarks/tflite_batch_routes.py``): litert-torch
0.10 with ``torch.export`` dynamic shapes fails on ``nn.Linear`` (jax lowering of a symbolic batch) or
specialises the internal shapes to the sample batch, so its artifacts have a fixed batch; the SavedModel that
edgeport already writes for ``tf`` converts to a true dynamic batch (``shape_signature`` -1). When that route
fails for a model (``--tflite-route auto``) edgeport falls back to litert-torch with a fixed batch and says so
in the notes (``dynamic_batch: false``, ``fixed_batch``), the table, the manifest and the report. Every
artifact is checked to hold builtin operators only and to run in ``ai_edge_litert``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edgeport.errors import ConversionError, EdgeportError, UnsupportedFormatError
from edgeport.exporters import _torch_compat
from edgeport.exporters import tflite_common as C
from edgeport.exporters.base import ExportOptions, FormatSpec, error_line
from edgeport.reporting.versions import package_versions
from edgeport.sources.base import ModelHandle

log = logging.getLogger(__name__)

SIGNATURE = C.SIGNATURE
#: ``--tflite-route`` values: auto = the dynamic-batch SavedModel route, litert-torch (fixed batch) if it fails.
ROUTES = ("auto", "savedmodel", "litert-torch")
ROUTE_SAVEDMODEL = "torch.onnx.export(dynamo) -> onnx2tf SavedModel -> TFLiteConverter (builtins)"
ROUTE_LITERT = "litert-torch"
ROUTE_ONNX = "ONNX source -> onnx2tf SavedModel -> TFLiteConverter (builtins)"
VERSIONS = ("torch", "onnx2tf", "tensorflow-cpu", "litert-torch", "litert-converter", "ai-edge-quantizer",
            "ai-edge-litert")


def _keep_regexes(handle: ModelHandle) -> list[str]:
    return [_torch_compat.tflite_scope_regex(f"{_torch_compat.WRAPPED_ATTR}.{p}") for p in handle.keep_float if p]


def _full_int8(data: bytes, handle: ModelHandle, options: ExportOptions, notes: dict) -> bytes:
    out = C.quantize_full_int8(data, handle, options, keep_regexes=_keep_regexes(handle), notes=notes,
                               batch=notes["fixed_batch"] or 1)
    notes["route"] += " + ai-edge-quantizer (static_wi8_ai8, float32 I/O)"
    return out


#: precision -> the step from the float flatbuffer
PRECISIONS = C.precision_table(_full_int8, _keep_regexes)


def export(handle: ModelHandle, *, fmt: FormatSpec, path: Path, options: ExportOptions) -> dict:
    """Write the TFLite artifact for ``fmt`` at ``path``; return manifest notes."""
    path = Path(path)
    t0 = time.perf_counter()
    if handle.framework == "keras":
        from edgeport.exporters import tflite_keras

        return tflite_keras.export(handle, fmt=fmt, path=path, options=options)
    if handle.framework not in ("torch", "onnx"):
        raise UnsupportedFormatError(
            f"TFLite export from a '{handle.framework}' source is not implemented; supported: torch, keras, onnx"
        )
    step = C.precision_step(PRECISIONS, fmt)
    notes: dict = {"format": fmt.name, "versions": package_versions(VERSIONS), "signature": SIGNATURE}
    data, float_notes = float_flatbuffer(handle, options)
    notes.update(float_notes)
    notes["convert_seconds"] = round(time.perf_counter() - t0, 3)
    batch = notes["fixed_batch"]
    out = step(data, handle, options, notes)
    if fmt.precision != "fp32":
        notes["keep_float_modules"] = list(handle.keep_float)
        notes["keep_float_regexes"] = _keep_regexes(handle)
        notes["kept_float"] = C.kept_float_ops(out, full_integer=fmt.precision == "int8_full")
    C.write_checked(out, handle, path, notes, t0)
    notes["how_to_run_n_rows"] = (
        "dynamic batch: interpreter.resize_tensor_input(index, [n, ...]) then allocate_tensors(), or call the "
        "serving_default signature runner with n rows" if batch is None else
        f"fixed batch {batch}: resizing is NOT supported (a non-strict resize_tensor_input returns {batch} row(s) "
        f"for n inputs); use resize_tensor_input(..., strict=True) to have a wrong resize refused, feed rows "
        f"{batch} at a time (pad the last chunk), or use edgeport.runtimes.open_runner('litert', path).run(feeds)"
    )
    return notes


def float_flatbuffer(handle: ModelHandle, options: ExportOptions) -> tuple[bytes, dict]:
    """The FP32 flatbuffer every TFLite format of one export starts from (converted once per handle and
    route) and its notes: ``route``, ``dynamic_batch``, ``fixed_batch`` (None when dynamic)."""
    route = options.tflite_route
    key = (route, options.tflite_batch, options.opset)
    cache = handle.__dict__.setdefault("_tflite_torch_float", {})
    if key in cache:
        return cache[key]
    notes: dict = {}
    data = None
    if handle.framework == "onnx":
        cache[key] = _onnx_float_flatbuffer(handle, options)
        return cache[key][0], dict(cache[key][1])
    if route in ("auto", "savedmodel"):
        t0 = time.perf_counter()
        try:
            data = savedmodel_tflite(handle, options)
            if not C.dynamic_batch(data):
                raise ConversionError("the converted model has no dynamic batch (shape_signature is not -1)")
            notes.update(route=ROUTE_SAVEDMODEL, dynamic_batch=True, fixed_batch=None,
                         float_convert_seconds=round(time.perf_counter() - t0, 3))
        except (EdgeportError, ImportError) as e:  # e.g. onnx2tf fails on the model, TensorFlow not installed
            if route == "savedmodel":
                raise
            data = None
            log.warning("no dynamic-batch TFLite for %s (%s); falling back to litert-torch with a FIXED batch "
                        "of %d", handle.name, e, options.tflite_batch)
            notes["dynamic_batch_unavailable"] = str(e)
    if data is None:
        t0 = time.perf_counter()
        data = _torch_compat.litert_convert(handle, batch=options.tflite_batch)
        notes.update(route=ROUTE_LITERT, dynamic_batch=False, fixed_batch=options.tflite_batch,
                     float_convert_seconds=round(time.perf_counter() - t0, 3))
    cache[key] = (data, notes)
    return data, dict(notes)


def _onnx_float_flatbuffer(handle: ModelHandle, options: ExportOptions) -> tuple[bytes, dict]:
    """FP32 TFLite bytes of an ONNX source and their notes (``route``, ``dynamic_batch``, ``fixed_batch``)."""
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
    if fixed is None and not C.dynamic_batch(data):
        raise ConversionError("the ONNX source has a symbolic batch but the converted TFLite model does not (no -1 "
                              "in its shape signature)")
    return data, {"route": ROUTE_ONNX, "dynamic_batch": fixed is None, "fixed_batch": fixed,
                  "float_convert_seconds": round(time.perf_counter() - t0, 3)}


def savedmodel_tflite(handle: ModelHandle, options: ExportOptions) -> bytes:
    """FP32 TFLite through the SavedModel edgeport writes for ``tf`` (dynamic batch, the handle's names in
    the ``serving_default`` signature), converted with builtin ops only."""
    import tempfile

    from edgeport.exporters import FORMATS, saved_model

    tf = C.tf_module("TFLite export of PyTorch models (SavedModel route)")
    with tempfile.TemporaryDirectory(dir=options.work_dir, prefix="edgeport_tflite_sm_") as tmp:
        sm = Path(tmp) / "saved_model"
        saved_model.export(handle, fmt=FORMATS.get("tf"), path=sm, options=options)
        try:
            with _torch_compat.quiet():
                conv = tf.lite.TFLiteConverter.from_saved_model(str(sm), signature_keys=[SIGNATURE])
        except Exception as e:
            raise ConversionError(f"SavedModel -> TFLite converter failed: {type(e).__name__}: {error_line(e)}") from e
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return order_io(C.convert(conv), handle)


def order_io(data: bytes, handle: ModelHandle) -> bytes:
    """The subgraph's inputs and outputs in the handle's order (the TF converter orders them its own way,
    e.g. ``y, x``; the signature maps names to tensors either way): the two index vectors are permuted in
    place, nothing else in the flatbuffer changes."""
    import struct

    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(data)
    model = schema.Model.GetRootAs(buf, 0)
    if model.SignatureDefsLength() != 1 or model.SubgraphsLength() != 1:
        return data
    sig, sg = model.SignatureDefs(0), model.Subgraphs(0)
    for names, n_sig, get_sig, n_sg, get_sg, field in (
        (handle.input_names, sig.InputsLength(), sig.Inputs, sg.InputsLength(), sg.Inputs, 6),
        (handle.output_names, sig.OutputsLength(), sig.Outputs, sg.OutputsLength(), sg.Outputs, 8),
    ):
        by_name = {get_sig(i).Name().decode(): int(get_sig(i).TensorIndex()) for i in range(n_sig)}
        current = [int(get_sg(j)) for j in range(n_sg)]
        if sorted(by_name) != sorted(names) or sorted(by_name.values()) != sorted(current):
            continue
        start = sg._tab.Vector(sg._tab.Offset(field))  # SubGraph.inputs is field 6, outputs field 8
        for j, name in enumerate(names):
            struct.pack_into("<i", buf, start + 4 * j, by_name[name])
    return bytes(buf)

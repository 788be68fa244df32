"""Keras 3 -> TFLite: the float flatbuffer, the TFLite converter's own PTQ, and which ops stay float.

The float model goes through a SavedModel whose ``serving_default`` signature takes the handle's input name
and returns a dict keyed by the handle's output names, so the TFLite signature keeps both (``from_keras_model``
names the output ``output_0``). LESSONS: ``from_keras_model``, SavedModel + ``from_saved_model`` and Keras's
LiteRT export give identical files; ``from_concrete_functions`` did not freeze the weights (NaN outputs).
Builtin ops only (``TFLITE_BUILTINS``): Keras's own LiteRT export would allow Flex ops.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from edgeport.errors import ConversionError, MissingDependencyError
from edgeport.exporters import _torch_compat
from edgeport.sources.base import ModelHandle

#: Keras layer names (SPEC §5) whose ops stay float in the quantized artifact, per decision:
#: the per-sample normalisation divides by an input-derived value (zero on quiet INT8 input) ...
NORMALIZE_LAYERS = ("frontend_normalize",)
#: ... and ``--float-frontend`` keeps the learned frontend (mel mixer / raw filterbank, magnitude scaling).
FRONTEND_LAYERS = ("mel_mixer", "frontend_normalize", "raw_reshape", "raw_filterbank", "raw_bn", "raw_relu6",
                   "raw_pool", "raw_crop", "raw_to_bins_first", "mag_pwl", "mag_pcen", "mag_db")


#: an output activation stays float: an INT8 sigmoid has a 1/256 step that erases low probabilities (SPEC §3)
FLOAT_OUTPUT_OPS = ("LOGISTIC", "SOFTMAX")


def _tf():
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError("tensorflow-cpu", "TFLite export of Keras models", "tf") from None
    return tf


def _saved_model(handle: ModelHandle, out: Path) -> None:
    """Keras's ExportArchive (it tracks the variables so the converter freezes them; a plain ``tf.Module``
    left VAR_HANDLE ops and NaN outputs) with one ``serving_default`` endpoint returning named outputs."""
    import keras

    tf = _tf()
    model = handle.model
    spec = handle.inputs[0]
    out_names = handle.output_names

    def serve(x):
        y = model(x, training=False)
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        return {n: tf.cast(v, tf.float32) for n, v in zip(out_names, ys, strict=True)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve,
                         input_signature=[tf.TensorSpec(spec.shape, tf.float32, name=spec.name)])
    archive.write_out(str(out), verbose=False)


def converter(handle: ModelHandle, work_dir: Path | None = None):
    """A ``TFLiteConverter`` for the handle's model, from a SavedModel written once per handle (a temporary
    folder removed when the handle goes away or the process ends)."""
    import shutil
    import weakref

    tf = _tf()
    d = getattr(handle, "_keras_saved_model", None)
    if d is None or not Path(d).is_dir():
        d = Path(tempfile.mkdtemp(prefix="edgeport-keras-sm-", dir=getattr(handle, "scratch_dir", None)))
        try:
            with _torch_compat.quiet():
                _saved_model(handle, d / "sm")
        except Exception as e:
            shutil.rmtree(d, ignore_errors=True)
            raise ConversionError(f"Keras -> SavedModel failed: {type(e).__name__}: {_line(e)}") from e
        handle._keras_saved_model = d
        weakref.finalize(handle, shutil.rmtree, str(d), True)
    try:
        with _torch_compat.quiet():
            return tf.lite.TFLiteConverter.from_saved_model(str(Path(d) / "sm"))
    except Exception as e:
        raise ConversionError(f"Keras SavedModel -> TFLite converter failed: {type(e).__name__}: {_line(e)}") from e


def convert_float(handle: ModelHandle, work_dir: Path | None) -> bytes:
    """FP32 TFLite with builtin ops only and the handle's signature names (converted once per handle: every
    TFLite format of one export starts from the same float flatbuffer)."""
    cached = getattr(handle, "_tflite_float", None)
    if cached is not None:
        return cached
    tf = _tf()
    conv = converter(handle, work_dir)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    data = _convert(conv)
    handle._tflite_float = data
    return data


def convert_ptq(handle: ModelHandle, samples: np.ndarray, work_dir: Path | None, *, per_tensor: bool = False,
                float_layers: tuple[str, ...] = ()) -> bytes:
    """The TFLite converter's own full-integer PTQ (seed 001): INT8 builtins, float32 I/O, calibrated on
    ``samples`` (one row per step). The ops of ``float_layers`` (and every op between the input and them)
    stay float through the converter's QuantizationDebugger ``denylisted_nodes``."""
    tf = _tf()
    conv = converter(handle, work_dir)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.inference_input_type = tf.float32
    conv.inference_output_type = tf.float32
    name = handle.input_names[0]

    def gen():
        for row in samples:
            yield {name: row[None].astype(np.float32)}

    conv.representative_dataset = gen
    if per_tensor:
        conv._experimental_disable_per_channel = True
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    nodes = denylist_nodes(convert_float(handle, work_dir), float_layers)
    try:
        with _torch_compat.quiet():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=lambda: iter(()),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes))
            return bytes(debugger.get_nondebug_quantized_model())
    except Exception as e:
        raise ConversionError(f"the TFLite converter failed: {type(e).__name__}: {_line(e)}") from e


def denylist_nodes(float_data: bytes, layers: tuple[str, ...]) -> list[str]:
    """Output tensor names of the ops of ``layers`` and of every op between the graph input and them."""
    from edgeport.exporters.tflite import input_side_regexes

    rx = layer_regexes(layers)
    exact = input_side_regexes(float_data, rx)  # the ops in front (exact-name regexes)
    from ai_edge_litert import schema_py_generated as schema

    from edgeport.exporters.tflite import tflite_op_names

    codes = tflite_op_names(float_data)
    sg = schema.Model.GetRootAs(bytearray(float_data), 0).Subgraphs(0)
    graph_outputs = {sg.Outputs(i) for i in range(sg.OutputsLength())}
    names = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        for j in range(op.OutputsLength()):
            n = sg.Tensors(op.Outputs(j)).Name().decode()
            final_sigmoid = codes[op.OpcodeIndex()] in FLOAT_OUTPUT_OPS and op.Outputs(j) in graph_outputs
            if final_sigmoid or any(re.search(r, n) for r in rx) or any(re.search(r, n + ";") for r in exact):
                names.append(n)
    return names


def _convert(conv) -> bytes:
    try:
        with _torch_compat.quiet():
            return bytes(conv.convert())
    except Exception as e:
        raise ConversionError(f"the TFLite converter failed: {type(e).__name__}: {_line(e)}") from e


def layer_regexes(layers: tuple[str, ...]) -> list[str]:
    """ai-edge-quantizer scope regexes for the ops of these Keras layers (op scopes read ``.../<layer>_1/op``)."""
    return [rf"(^|/){re.escape(n)}(_\d+)?/" for n in layers]


def keep_float_layers(handle: ModelHandle, *, float_frontend: bool) -> tuple[str, ...]:
    """Layers of the handle's model that stay float in the full-integer artifact (only those present), and a
    seed-system hybrid frontend (``seed_layers.int8_float_layers``)."""
    from edgeport.families.audio.seed_layers import int8_float_layers

    names = {layer.name for layer in getattr(handle.model, "layers", [])}
    want = FRONTEND_LAYERS if float_frontend else NORMALIZE_LAYERS
    return tuple(n for n in want if n in names) + int8_float_layers(handle.model)


def _line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else "")[:300]


# ----------------------------------------------------------------------------------------------- export


def export(handle: ModelHandle, *, fmt, path: Path, options) -> dict:
    """Write the TFLite artifact of ``fmt`` for a Keras source at ``path``; return manifest notes.

    FP32 from the TFLite converter; FP16, dynamic INT8 and full INT8 with ai-edge-quantizer on that float
    flatbuffer (measured the better PTQ route on the DS-CNN: docs/dev/tflite-route.md, audio section), or the
    converter's own PTQ with ``options.extra["int8_route"] = "converter"``.
    """
    import time
    from dataclasses import replace

    from edgeport.exporters import tflite as T

    t0 = time.perf_counter()
    notes: dict = {"format": fmt.name, "route": "keras -> SavedModel -> TFLiteConverter (builtins)",
                   "versions": _versions(), "dynamic_batch": True, "signature": T.SIGNATURE}
    data = convert_float(handle, options.work_dir)
    notes["convert_seconds"] = round(time.perf_counter() - t0, 3)
    if fmt.precision == "fp32":
        out = data
    elif fmt.precision == "fp16":
        out = T.quantize(data, "fp16")
        notes["route"] += " + ai-edge-quantizer (float16 weights)"
    elif fmt.precision == "int8_dynamic":
        out = T.quantize(data, "int8_dynamic", per_tensor=options.per_tensor)
        notes["route"] += " + ai-edge-quantizer (dynamic_wi8_afp32)"
    elif fmt.precision == "int8_full":
        out = _full_int8(data, handle, replace(options, tflite_batch=1), notes)
    else:
        from edgeport.errors import UnsupportedFormatError

        raise UnsupportedFormatError(f"TFLite exporter has no precision '{fmt.precision}' (format {fmt.name})")
    ops = T.tflite_op_names(out)
    T.check_builtin_only(ops)
    notes["ops"] = sorted(set(ops))
    T._check_runs(out, handle)
    _check_float_io(out)
    try:
        path.write_bytes(out)
    except BaseException:
        if path.is_file():
            path.unlink()
        raise
    notes["seconds"] = round(time.perf_counter() - t0, 3)
    return notes


def _full_int8(data: bytes, handle: ModelHandle, options, notes: dict) -> bytes:
    from edgeport.exporters import tflite as T

    extra = options.extra or {}
    float_frontend = bool(extra.get("float_frontend"))
    route = extra.get("int8_route", "converter")
    if handle.calibration_inputs is None:
        raise ConversionError("tflite_int8_full needs calibration data: pass --data-path-train FOLDER (labelled "
                              "audio) or use --quantization dynamic")
    kept = keep_float_layers(handle, float_frontend=float_frontend)
    if extra.get("int8_normalize") and not float_frontend:  # measurement only (benchmarks): the trap, in INT8
        kept = tuple(k for k in kept if k not in NORMALIZE_LAYERS)
    notes.update({"float_frontend": float_frontend, "float_layers": list(kept), "int8_route": route})
    if route == "converter":
        samples = handle.calibration_inputs(options.calibration_samples, 0)[handle.input_names[0]]
        out = convert_ptq(handle, samples, options.work_dir, per_tensor=options.per_tensor, float_layers=kept)
        notes["route"] += " + TFLite converter PTQ (float32 I/O; float layers via QuantizationDebugger denylist)"
    else:
        out = T.quantize_full_int8(data, handle, options, keep_regexes=layer_regexes(kept), notes=notes)
        notes["route"] += " + ai-edge-quantizer (static_wi8_ai8, float32 I/O, float sigmoid)"
    notes["npu"] = npu_report(out, handle, check=extra.get("npu_check", True), float_requested=float_frontend)
    return out


def float_ops(data: bytes) -> list[str]:
    """``OP:output_name`` of every op computing in float (QUANTIZE/DEQUANTIZE at the float I/O excepted)."""
    from ai_edge_litert import schema_py_generated as schema

    from edgeport.exporters.tflite import tflite_op_names

    codes = tflite_op_names(data)
    sg = schema.Model.GetRootAs(bytearray(data), 0).Subgraphs(0)
    out = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = codes[op.OpcodeIndex()]
        if code in ("QUANTIZE", "DEQUANTIZE"):
            continue
        t = sg.Tensors(op.Outputs(0))
        if t.Type() == schema.TensorType.FLOAT32:
            out.append(f"{code}:{t.Name().decode().split(';')[0]}")
    return out


def npu_report(data: bytes, handle: ModelHandle, *, check: bool, float_requested: bool) -> dict:
    """SPEC §4 NPU readiness: channel counts multiple of 8, raw input <= 65,536 samples, every op INT8.

    Float ops are listed as CPU work: the final sigmoid (by design, SPEC §3), the per-sample normalisation
    and what feeds it (by design: it divides by an input-derived value), and the frontend with
    ``--float-frontend``. Config problems fail the conversion unless ``--no-npu-check``.
    """
    from edgeport.sources.keras import audio_config

    cpu = float_ops(data)
    report = {"checked": check, "cpu_ops": cpu, "cpu_op_count": len(cpu), "problems": []}
    cfg = audio_config(handle)
    if cfg is not None:
        from edgeport.families.audio.frontends import npu_problems

        report["problems"] = npu_problems(cfg)
    odd = unaligned_convolutions(data)
    if odd:
        report["problems"].append(f"{len(odd)} convolution(s) with a channel count that is not a multiple of 8 "
                                  f"(NPU alignment), e.g. {odd[0]}")
    if check and report["problems"]:
        raise ConversionError("NPU check: " + "; ".join(report["problems"]) + " (--no-npu-check to skip)")
    return report


def unaligned_convolutions(data: bytes) -> list[str]:
    """``name (C channels)`` of the convolutions whose output channels are not a multiple of 8."""
    from ai_edge_litert import schema_py_generated as schema

    from edgeport.exporters.tflite import tflite_op_names

    codes = tflite_op_names(data)
    sg = schema.Model.GetRootAs(bytearray(data), 0).Subgraphs(0)
    out = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        if codes[op.OpcodeIndex()] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        t = sg.Tensors(op.Outputs(0))
        ch = int(t.Shape(t.ShapeLength() - 1)) if t.ShapeLength() else 0
        if ch % 8:
            out.append(f"{t.Name().decode().split(';')[0]} ({ch} channels)")
    return out


def _check_float_io(data: bytes) -> None:
    """Seed 001's rule, checked on the flatbuffer itself: audio inputs and outputs stay float32."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    bad = [f"{d['name']}={np.dtype(d['dtype']).name}" for d in [*it.get_input_details(), *it.get_output_details()]
           if np.dtype(d["dtype"]) != np.float32]
    if bad:
        raise ConversionError(f"the TFLite artifact has non-float32 I/O ({', '.join(bad)}); audio inputs need "
                              "float32 I/O with INT8 internals")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tensorflow-cpu", "keras", "ai-edge-quantizer", "ai-edge-litert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out

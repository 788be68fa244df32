"""Keras 3 -> TFLite: the float flatbuffer, the TFLite converter's own PTQ, and which ops stay float.

The float model goes through a SavedModel whose ``serving_default`` signature takes the handle's input name
and returns a dict keyed by the handle's output names, so the TFLite signature keeps both (``from_keras_model``
names the output ``output_0``). LESSONS: ``from_keras_model``, SavedModel + ``from_saved_model`` and Keras's
LiteRT export give identical files; ``from_concrete_functions`` did not freeze the weights (NaN outputs).
Builtin ops only (``TFLITE_BUILTINS``): Keras's own LiteRT export would allow Flex ops. Which layers stay
float is the model family's answer (``edgeport.families``), not this module's.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeport.errors import ConversionError
from edgeport.exporters import _torch_compat
from edgeport.exporters import tflite_common as C
from edgeport.exporters.base import ExportOptions, error_line
from edgeport.families import family_of
from edgeport.reporting.versions import package_versions
from edgeport.sources.base import ModelHandle

VERSIONS = ("tensorflow-cpu", "keras", "ai-edge-quantizer", "ai-edge-litert")


def write_saved_model(handle: ModelHandle, out: Path) -> None:
    """Keras's ExportArchive (it tracks the variables so the converter freezes them; a plain ``tf.Module``
    left VAR_HANDLE ops and NaN outputs) with one ``serving_default`` endpoint returning named outputs."""
    import keras

    tf = C.tf_module()
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


def converter(handle: ModelHandle):
    """A ``TFLiteConverter`` for the handle's model, from a SavedModel written once per handle (a temporary
    folder removed when the handle goes away or the process ends)."""
    import shutil
    import weakref

    tf = C.tf_module()
    d = getattr(handle, "_keras_saved_model", None)
    if d is None or not Path(d).is_dir():
        d = Path(tempfile.mkdtemp(prefix="edgeport-keras-sm-", dir=getattr(handle, "scratch_dir", None)))
        try:
            with _torch_compat.quiet():
                write_saved_model(handle, d / "sm")
        except Exception as e:
            shutil.rmtree(d, ignore_errors=True)
            raise ConversionError(f"Keras -> SavedModel failed: {type(e).__name__}: {error_line(e)}") from e
        handle._keras_saved_model = d
        weakref.finalize(handle, shutil.rmtree, str(d), True)
    try:
        with _torch_compat.quiet():
            return tf.lite.TFLiteConverter.from_saved_model(str(Path(d) / "sm"))
    except Exception as e:
        raise ConversionError(f"Keras SavedModel -> TFLite converter failed: {type(e).__name__}: {error_line(e)}") from e


def convert_float(handle: ModelHandle) -> bytes:
    """FP32 TFLite with builtin ops only and the handle's signature names (converted once per handle: every
    TFLite format of one export starts from the same float flatbuffer)."""
    cached = getattr(handle, "_tflite_float", None)
    if cached is not None:
        return cached
    tf = C.tf_module()
    conv = converter(handle)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    data = C.convert(conv)
    handle._tflite_float = data
    return data


def convert_ptq(handle: ModelHandle, samples: np.ndarray, *, per_tensor: bool = False,
                float_layers: tuple[str, ...] = (), float_only: tuple[str, ...] = ()) -> bytes:
    """The TFLite converter's own full-integer PTQ (seed 001): INT8 builtins, float32 I/O, calibrated on
    ``samples`` (one row per step). The ops of ``float_layers`` (and every op between the input and them)
    and of ``float_only`` (those ops alone) stay float through the converter's QuantizationDebugger
    ``denylisted_nodes``."""
    tf = C.tf_module()
    conv = ptq_converter(handle, samples, per_tensor=per_tensor)
    nodes = denylist_nodes(convert_float(handle), float_layers, only=float_only)
    try:
        with _torch_compat.quiet():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=lambda: iter(()),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes))
            return bytes(debugger.get_nondebug_quantized_model())
    except Exception as e:
        raise ConversionError(f"the TFLite converter failed: {type(e).__name__}: {error_line(e)}") from e


def ptq_converter(handle: ModelHandle, samples: np.ndarray, *, per_tensor: bool = False):
    """The converter set up for full-integer PTQ (INT8 builtins, float32 I/O, ``samples`` one row per step):
    what ``convert_ptq`` and the per-layer QuantizationDebugger report (validation/per_layer.py) start from."""
    tf = C.tf_module()
    conv = converter(handle)
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
    return conv


def denylist_nodes(float_data: bytes, layers: tuple[str, ...], only: tuple[str, ...] = ()) -> list[str]:
    """Output tensor names of the ops of ``layers``, of every op between the graph input and them, of the
    ops of the ``only`` layers, and of a final sigmoid / softmax."""
    rx = C.layer_regexes(layers)
    exact = C.input_side_regexes(float_data, rx)  # the ops in front (exact-name regexes)
    rx = rx + C.layer_regexes(only)
    names = []
    graph_outputs = None
    for code, op, sg, _ in C._ops(float_data):
        if graph_outputs is None:
            graph_outputs = {sg.Outputs(i) for i in range(sg.OutputsLength())}
        for j in range(op.OutputsLength()):
            n = sg.Tensors(op.Outputs(j)).Name().decode()
            final_sigmoid = code in C.FLOAT_OUTPUT_OPS and op.Outputs(j) in graph_outputs
            if final_sigmoid or any(re.search(r, n) for r in rx) or any(re.search(r, n + ";") for r in exact):
                names.append(n)
    return names


# ----------------------------------------------------------------------------------------------- export


def _full_int8(data: bytes, handle: ModelHandle, options: ExportOptions, notes: dict) -> bytes:
    if handle.calibration_inputs is None:
        raise ConversionError("tflite_int8_full needs calibration data: pass --data-path-train FOLDER (labelled "
                              "audio) or use --quantization dynamic")
    family = family_of(handle)
    kept = family.float_layers(handle, backend="tflite", float_frontend=options.float_frontend,
                               quantize_normalize=options.quantize_normalize) if family else ()
    notes.update({"float_frontend": options.float_frontend, "float_layers": list(kept),
                  "int8_route": options.int8_route, "fallback_float_layers": list(options.fallback_float)})
    if options.int8_route == "converter":
        samples = handle.calibration_inputs(options.calibration_samples, 0)[handle.input_names[0]]
        out = convert_ptq(handle, samples, per_tensor=options.per_tensor, float_layers=kept,
                          float_only=tuple(options.fallback_float))
        notes["route"] += " + TFLite converter PTQ (float32 I/O; float layers via QuantizationDebugger denylist)"
    else:
        if options.fallback_float:
            raise ConversionError("the float fallback keeps Keras layers float through the converter's PTQ; use "
                                  "--int8-route converter with --auto-fallback")
        out = C.quantize_full_int8(data, handle, options, keep_regexes=C.layer_regexes(kept), notes=notes, batch=1)
        notes["route"] += " + ai-edge-quantizer (static_wi8_ai8, float32 I/O, float sigmoid)"
    notes["npu"] = npu_report(out, handle, check=options.npu_check)
    return out


#: precision -> the step from the float flatbuffer
PRECISIONS = C.precision_table(_full_int8)


def export(handle: ModelHandle, *, fmt, path: Path, options: ExportOptions) -> dict:
    """Write the TFLite artifact of ``fmt`` for a Keras source at ``path``; return manifest notes.

    FP32 from the TFLite converter; FP16 and dynamic INT8 with ai-edge-quantizer on that float flatbuffer;
    full INT8 with the converter's own PTQ (``options.int8_route="converter"``, the default) or
    ai-edge-quantizer (docs/dev/tflite-route.md, audio section).
    """
    step = C.precision_step(PRECISIONS, fmt)
    t0 = time.perf_counter()
    notes: dict = {"format": fmt.name, "route": "keras -> SavedModel -> TFLiteConverter (builtins)",
                   "versions": package_versions(VERSIONS), "dynamic_batch": True, "signature": C.SIGNATURE}
    data = convert_float(handle)
    notes["convert_seconds"] = round(time.perf_counter() - t0, 3)
    out = step(data, handle, options, notes)
    bad = C.non_float32_io(out)
    if bad:  # seed 001's rule, checked on the flatbuffer itself
        raise ConversionError(f"the TFLite artifact has non-float32 I/O ({', '.join(bad)}); audio inputs need "
                              "float32 I/O with INT8 internals")
    return C.write_checked(out, handle, path, notes, t0)


def npu_report(data: bytes, handle: ModelHandle, *, check: bool) -> dict:
    """SPEC §4 NPU readiness: channel counts multiple of 8, every op INT8, and the family's own problems
    (e.g. the audio family's raw input <= 65,536 samples).

    Float ops are listed as CPU work: the final sigmoid (by design, SPEC §3), the layers the family keeps
    float and what feeds them. Problems fail the conversion unless ``--no-npu-check``.
    """
    cpu = C.float_ops(data)
    family = family_of(handle)
    report = {"checked": check, "cpu_ops": cpu, "cpu_op_count": len(cpu),
              "problems": family.npu_problems(handle) if family else []}
    odd = C.unaligned_convolutions(data)
    if odd:
        report["problems"].append(f"{len(odd)} convolution(s) with a channel count that is not a multiple of 8 "
                                  f"(NPU alignment), e.g. {odd[0]}")
    if check and report["problems"]:
        raise ConversionError("NPU check: " + "; ".join(report["problems"]) + " (--no-npu-check to skip)")
    return report

"""TFLite artifacts from PyTorch with a dynamic batch: torch -> ONNX (dynamo) -> onnx2tf SavedModel -> TFLite
converter (builtin ops only), then ai-edge-quantizer for FP16/INT8 on that float flatbuffer.

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

import numpy as np

from edgeport.errors import (
    ConversionError,
    EdgeportError,
    MissingDependencyError,
    UnsupportedFormatError,
)
from edgeport.exporters import _torch_compat
from edgeport.exporters.base import ExportOptions, FormatSpec
from edgeport.sources.base import ModelHandle

log = logging.getLogger(__name__)

SIGNATURE = "serving_default"
#: ai-edge-quantizer op names kept float in the full-integer artifact (float32 I/O, float sigmoid).
FULL_INT8_FLOAT_OPS = ("INPUT", "OUTPUT", "LOGISTIC", "DIV")
#: periodic encodings of raw inputs (and every op in front of them) stay float in the full-integer artifact.
TRIG_OPS = frozenset({"SIN", "COS"})
#: scope regex -> op names kept float inside it in the full-integer artifact. LayerNorm is decomposed into
#: MEAN / SQUARED_DIFFERENCE / RSQRT / MUL / ADD / SUB; in INT8 its variance is coarse. Measured on the geo
#: family checkpoint (docs/dev/tflite-route.md): all INT8 top-1 0.83 (fails); these ops float 0.90 (passes),
#: 212 kB instead of 202 kB. Fully connected layers stay INT8 (matching the op name, not just the scope).
FULL_INT8_FLOAT_SCOPED_OPS: dict[str, tuple[str, ...]] = {
    # litert-torch names (module path) and onnx2tf / TF converter names (Keras-style layer scopes)
    r"normalization\.LayerNorm_|(^|/)layer_normalization(_\d+)?/": ("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "MUL",
                                                                    "ADD", "SUB"),
}
#: ``--tflite-route`` values: auto = the dynamic-batch SavedModel route, litert-torch (fixed batch) if it fails.
ROUTES = ("auto", "savedmodel", "litert-torch")
ROUTE_SAVEDMODEL = "torch.onnx.export(dynamo) -> onnx2tf SavedModel -> TFLiteConverter (builtins)"
ROUTE_LITERT = "litert-torch"


def export(handle: ModelHandle, *, fmt: FormatSpec, path: Path, options: ExportOptions) -> dict:
    """Write the TFLite artifact for ``fmt`` at ``path``; return manifest notes."""
    path = Path(path)
    t0 = time.perf_counter()
    if handle.framework == "keras":
        from edgeport.exporters import _keras_tflite

        return _keras_tflite.export(handle, fmt=fmt, path=path, options=options)
    if handle.framework != "torch":
        raise UnsupportedFormatError(
            f"TFLite export from a '{handle.framework}' source is not implemented; supported: torch, keras"
        )
    notes: dict = {"format": fmt.name, "versions": _versions(), "signature": SIGNATURE}
    data, float_notes = float_flatbuffer(handle, options)
    notes.update(float_notes)
    notes["convert_seconds"] = round(time.perf_counter() - t0, 3)
    batch = notes["fixed_batch"]
    keep = [_torch_compat.tflite_scope_regex(f"{_torch_compat.WRAPPED_ATTR}.{p}") for p in handle.keep_float if p]
    if fmt.precision == "fp32":
        out = data
    elif fmt.precision == "fp16":
        out = quantize(data, "fp16", keep_regexes=keep)
        notes["route"] += " + ai-edge-quantizer (float16 weights, float casting)"
    elif fmt.precision == "int8_dynamic":
        out = quantize(data, "int8_dynamic", keep_regexes=keep, per_tensor=options.per_tensor)
        notes["route"] += " + ai-edge-quantizer (dynamic_wi8_afp32)"
    elif fmt.precision == "int8_full":
        out = quantize_full_int8(data, handle, options, keep_regexes=keep, notes=notes, batch=batch or 1)
        notes["route"] += " + ai-edge-quantizer (static_wi8_ai8, float32 I/O)"
    else:
        raise UnsupportedFormatError(f"TFLite exporter has no precision '{fmt.precision}' (format {fmt.name})")
    if fmt.precision != "fp32":
        notes["keep_float_modules"] = list(handle.keep_float)
        notes["keep_float_regexes"] = keep
        notes["kept_float"] = kept_float_ops(out, full_integer=fmt.precision == "int8_full")
    ops = tflite_op_names(out)
    check_builtin_only(ops)
    notes["ops"] = sorted(set(ops))
    _check_runs(out, handle)
    try:
        path.write_bytes(out)
    except BaseException:
        if path.is_file():
            path.unlink()
        raise
    notes["seconds"] = round(time.perf_counter() - t0, 3)
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
    if route in ("auto", "savedmodel"):
        t0 = time.perf_counter()
        try:
            data = savedmodel_tflite(handle, options)
            if not _dynamic_batch(data):
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


def savedmodel_tflite(handle: ModelHandle, options: ExportOptions) -> bytes:
    """FP32 TFLite through the SavedModel edgeport writes for ``tf`` (dynamic batch, the handle's names in
    the ``serving_default`` signature), converted with builtin ops only."""
    import tempfile

    from edgeport.exporters import FORMATS, saved_model
    from edgeport.exporters._keras_tflite import _convert, _tf

    tf = _tf()
    with tempfile.TemporaryDirectory(dir=options.work_dir, prefix="edgeport_tflite_sm_") as tmp:
        sm = Path(tmp) / "saved_model"
        saved_model.export(handle, fmt=FORMATS.get("tf"), path=sm, options=options)
        try:
            with _torch_compat.quiet():
                conv = tf.lite.TFLiteConverter.from_saved_model(str(sm), signature_keys=[SIGNATURE])
        except Exception as e:
            raise ConversionError(f"SavedModel -> TFLite converter failed: {type(e).__name__}: {_line(e)}") from e
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return order_io(_convert(conv), handle)


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


def _dynamic_batch(data: bytes) -> bool:
    """Every input and output has -1 on its first axis in the flatbuffer's shape signature."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    details = [*it.get_input_details(), *it.get_output_details()]
    return all(len(d["shape_signature"]) and int(d["shape_signature"][0]) == -1 for d in details)


# ----------------------------------------------------------------------------------------------- quantization


def _import_quantizer():
    try:
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe
    except ImportError:
        raise MissingDependencyError("ai-edge-quantizer", "TFLite FP16/INT8 export", "litert") from None
    return algorithm_manager, qtyping, quantizer, recipe


def quantize(data: bytes, kind: str, *, keep_regexes: list[str] = (), per_tensor: bool = False) -> bytes:
    """FP16 weights (``kind="fp16"``) or dynamic-range INT8 weights (``"int8_dynamic"``) with ai-edge-quantizer;
    tensors whose names match ``keep_regexes`` stay float."""
    algorithm_manager, qtyping, quantizer, _ = _import_quantizer()
    q = quantizer.Quantizer(data)
    op = qtyping.TFLOperationName.ALL_SUPPORTED
    gran = qtyping.QuantGranularity.TENSORWISE if per_tensor else qtyping.QuantGranularity.CHANNELWISE
    if kind == "fp16":
        q.add_weight_only_config(regex=".*", operation_name=op, num_bits=16,
                                 algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    elif kind == "int8_dynamic":
        q.add_dynamic_config(regex=".*", operation_name=op, num_bits=8, granularity=gran)
    else:
        raise ValueError(kind)
    for rx in keep_regexes:
        q.update_quantization_recipe(regex=rx, operation_name=op, algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return _run_quantizer(q)


def quantize_full_int8(data: bytes, handle: ModelHandle, options: ExportOptions, *, keep_regexes: list[str],
                       notes: dict, batch: int | None = None) -> bytes:
    """Full-integer INT8 internals (weights and activations), float32 I/O, calibrated with the handle's inputs."""
    algorithm_manager, qtyping, quantizer, _ = _import_quantizer()
    if handle.calibration_inputs is None:
        raise ConversionError("tflite_int8_full needs calibration data: give a data folder, or use tflite_int8")
    batch = batch or options.tflite_batch
    feeds = handle.calibration_inputs(options.calibration_samples, 0)
    n = int(next(iter(feeds.values())).shape[0]) // batch * batch
    if n == 0:
        raise ConversionError(f"calibration needs at least {batch} rows (the TFLite batch)")
    samples = [{k: v[i : i + batch] for k, v in feeds.items()} for i in range(0, n, batch)]
    q = quantizer.Quantizer(data)
    op = qtyping.TFLOperationName.ALL_SUPPORTED
    gran = qtyping.QuantGranularity.TENSORWISE if options.per_tensor else qtyping.QuantGranularity.CHANNELWISE
    q.add_static_config(regex=".*", operation_name=op, activation_num_bits=8, weight_num_bits=8,
                        weight_granularity=gran)
    no_quant = algorithm_manager.AlgorithmName.NO_QUANTIZE
    keep_regexes_in = list(keep_regexes)
    keep_regexes = keep_regexes_in + input_side_regexes(data, keep_regexes_in)
    for rx in keep_regexes:
        q.update_quantization_recipe(regex=rx, operation_name=op, algorithm_key=no_quant)
    # float32 I/O: the model's virtual INPUT/OUTPUT ops stay float (QUANTIZE/DEQUANTIZE go inside), and the
    # sigmoid stays float (an INT8 sigmoid has a 1/256 step that erases the low probabilities, SPEC §3)
    for float_op in FULL_INT8_FLOAT_OPS:
        q.update_quantization_recipe(regex=".*", operation_name=getattr(qtyping.TFLOperationName, float_op),
                                     algorithm_key=no_quant)
    for rx, float_ops in FULL_INT8_FLOAT_SCOPED_OPS.items():
        for float_op in float_ops:
            q.update_quantization_recipe(regex=rx, operation_name=getattr(qtyping.TFLOperationName, float_op),
                                         algorithm_key=no_quant)
    try:
        with _torch_compat.quiet():
            calib = q.calibrate({SIGNATURE: samples}, num_threads=1)
    except Exception as e:
        raise ConversionError(f"TFLite INT8 calibration failed: {type(e).__name__}: {_line(e)}") from e
    widened = widen_constant_ranges(calib)
    notes.update({
        "constant_ranges_widened": widened,
        "calibration_rows": n,
        "per_channel": not options.per_tensor,
        "float_ops": list(FULL_INT8_FLOAT_OPS),
        "float_ops_in_scope": {rx: list(o) for rx, o in FULL_INT8_FLOAT_SCOPED_OPS.items()},
        "input_side_ops_float": len(keep_regexes) - len(keep_regexes_in),
    })
    out = _run_quantizer(q, calib)
    check_int8_rescales(out)
    return out


#: the range (max - min) given to a tensor that is constant over the calibration set (a ReLU branch that never
#: opens): ai-edge-quantizer's own floor (1e-9) gives a scale LiteRT's INT8 ADD cannot rescale to, and
#: LiteRT aborts the process when it prepares that op
CONSTANT_RANGE = 1e-3


def widen_constant_ranges(calib: dict) -> int:
    """Give every calibrated tensor whose range is below ``CONSTANT_RANGE`` that range (in place, upwards from
    its minimum); returns how many were widened."""
    n = 0
    for qsv in calib.values():
        if not isinstance(qsv, dict) or "min" not in qsv or "max" not in qsv:
            continue
        lo, hi = np.asarray(qsv["min"], np.float64), np.asarray(qsv["max"], np.float64)
        narrow = hi - lo < CONSTANT_RANGE
        if narrow.any():
            qsv["max"] = np.where(narrow, lo + CONSTANT_RANGE, hi).astype(np.asarray(qsv["max"]).dtype)
            n += 1
    return n


def check_int8_rescales(data: bytes) -> None:
    """Refuse (one line) an INT8 ADD / SUB whose output scale LiteRT cannot rescale to: its kernel requires
    ``2 * max(input scales) / (2**20 * output scale) < 1`` and aborts the whole process otherwise."""
    from ai_edge_litert import schema_py_generated as schema

    sg = schema.Model.GetRootAs(bytearray(data), 0).Subgraphs(0)
    codes = tflite_op_names(data)

    def scale(t: int) -> float | None:
        q = sg.Tensors(t).Quantization()
        return float(q.ScaleAsNumpy()[0]) if q is not None and q.ScaleLength() == 1 else None

    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        if codes[op.OpcodeIndex()] not in ("ADD", "SUB") or sg.Tensors(op.Outputs(0)).Type() != schema.TensorType.INT8:
            continue
        s_in = [scale(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
        s_out = scale(op.Outputs(0))
        if s_out is None or None in s_in:
            continue
        if 2 * max(s_in) / (2**20 * s_out) >= 1:
            name = sg.Tensors(op.Outputs(0)).Name().decode().split(";")[0]
            raise ConversionError(
                f"INT8 {codes[op.OpcodeIndex()]} '{name}' got output scale {s_out:.3g} for input scales "
                f"{', '.join(f'{s:.3g}' for s in s_in)}: LiteRT cannot run it (its output is near-constant over the "
                "calibration set); calibrate on more varied data or use --int8-route converter")


def input_side_regexes(data: bytes, keep_regexes: list[str]) -> list[str]:
    """Exact-name regexes for the ops that must stay float in front of the quantized part: the ops matched by
    ``keep_regexes`` and every SIN/COS op (a periodic encoding of raw inputs, the same rule as FP16), plus all
    ops between the graph inputs and those (e.g. the wrapper's column split in front of the geo encoding).
    Quantizing them would round the raw inputs to INT8 before the float encoding sees them (measured on a
    user's geo-style model with no keep_float: top-1 agreement 0.44, centred Pearson 0.55)."""
    import re

    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(data), 0)
    sg = model.Subgraphs(0)
    name = [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())]
    opcode = tflite_op_names(data)
    producer: dict[int, int] = {}
    ops = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        outs = [op.Outputs(j) for j in range(op.OutputsLength())]
        ops.append((opcode[op.OpcodeIndex()], ins, outs))
        for t in outs:
            producer[t] = k
    matched = {k for k, (_, _, outs) in enumerate(ops) if any(re.search(rx, name[t]) for t in outs for rx in keep_regexes)}
    trig = {k for k, (code, _, _) in enumerate(ops) if code in TRIG_OPS}
    seen: set[int] = set()
    stack = list(matched | trig)
    while stack:
        k = stack.pop()
        for t in ops[k][1]:
            p = producer.get(t)
            if t >= 0 and p is not None and p not in seen:
                seen.add(p)
                stack.append(p)
    extra = sorted({name[t] for k in (seen | trig) - matched for t in ops[k][2]})
    # ai-edge-quantizer matches against the op scope: its output tensor names, each followed by ";"
    return [f"(^|;){re.escape(n)};" for n in extra]


#: ops whose constant inputs are the weights a weight-quantizing pass (FP16, dynamic INT8) changes
WEIGHT_OPS = frozenset({"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL", "TRANSPOSE_CONV",
                        "EMBEDDING_LOOKUP"})


def kept_float_ops(data: bytes, *, full_integer: bool) -> list[str]:
    """``OP:tensor`` of what a quantized artifact really keeps float, read from the flatbuffer: ops computing
    in float32 (full integer; QUANTIZE/DEQUANTIZE at the float I/O excepted) or weight-bearing ops whose
    weights are still float32 constants (FP16 weights, dynamic INT8)."""
    from ai_edge_litert import schema_py_generated as schema

    from edgeport.exporters._keras_tflite import float_ops

    if full_integer:
        return float_ops(data)
    model = schema.Model.GetRootAs(bytearray(data), 0)
    sg = model.Subgraphs(0)
    codes = tflite_op_names(data)
    out = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        if codes[op.OpcodeIndex()] not in WEIGHT_OPS:
            continue
        for j in range(op.InputsLength()):
            t = op.Inputs(j)
            if t < 0:
                continue
            tensor = sg.Tensors(t)
            constant = model.Buffers(tensor.Buffer()).DataLength() > 0 if tensor.Buffer() else False
            if constant and tensor.Type() == schema.TensorType.FLOAT32 and tensor.ShapeLength() >= 2:
                out.append(f"{codes[op.OpcodeIndex()]}:{sg.Tensors(op.Outputs(0)).Name().decode().split(';')[0]}")
                break
    return out


def _run_quantizer(q, calibration=None) -> bytes:
    try:
        with _torch_compat.quiet():
            result = q.quantize(calibration) if calibration is not None else q.quantize()
    except Exception as e:
        raise ConversionError(f"ai-edge-quantizer failed: {type(e).__name__}: {_line(e)}") from e
    return bytes(result.quantized_model)


# ----------------------------------------------------------------------------------------------- checks


def tflite_op_names(data: bytes) -> list[str]:
    """Operator codes used by a .tflite flatbuffer: builtin names (``FULLY_CONNECTED``) or ``CUSTOM:<code>``."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise MissingDependencyError("ai-edge-litert", "Reading TFLite files", "litert") from None
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(bytearray(data), 0)
    out = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            custom = oc.CustomCode()
            out.append(f"CUSTOM:{custom.decode() if custom else '?'}")
        else:
            out.append(names.get(code, f"BUILTIN_{code}"))
    return out


def check_builtin_only(ops: list[str]) -> None:
    """Refuse artifacts that need Select TF ops (Flex) or custom ops: ai-edge-litert cannot run them."""
    bad = sorted({o for o in ops if o.startswith("CUSTOM:")})
    if bad:
        flex = [o for o in bad if o.startswith("CUSTOM:Flex")]
        kind = "Select TF (Flex) ops" if flex else "custom ops"
        raise ConversionError(
            f"TFLite artifact needs {kind} {[o.split(':', 1)[1] for o in bad]}; edgeport accepts builtin ops only "
            "(rewrite the layer, e.g. exact GELU -> builtin GELU, or choose another format)"
        )


def _check_runs(data: bytes, handle: ModelHandle) -> None:
    """The artifact must load in ai_edge_litert (no Flex delegate) and expose the handle's names."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise MissingDependencyError("ai-edge-litert", "Checking TFLite artifacts", "litert") from None
    try:
        it = Interpreter(model_content=data)
        sig = it.get_signature_list().get(SIGNATURE)
    except Exception as e:
        raise ConversionError(f"the TFLite artifact does not load in ai-edge-litert: {_line(e)}") from e
    if sig is None:
        raise ConversionError(f"the TFLite artifact has no '{SIGNATURE}' signature")
    if sorted(sig["inputs"]) != sorted(handle.input_names) or sorted(sig["outputs"]) != sorted(handle.output_names):
        raise ConversionError(
            f"TFLite signature has inputs {sig['inputs']} / outputs {sig['outputs']}; expected "
            f"{handle.input_names} / {handle.output_names}"
        )


def _line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else "")[:300]


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "onnx2tf", "tensorflow-cpu", "litert-torch", "litert-converter", "ai-edge-quantizer",
                "ai-edge-litert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).max() for k in a))

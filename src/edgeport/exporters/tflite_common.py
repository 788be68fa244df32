"""What both TFLite routes (``tflite.py`` for PyTorch, ``tflite_keras.py`` for Keras) share: reading a
flatbuffer (op names, float ops, convolution channels), the checks every artifact passes (builtin ops only,
loads in ai-edge-litert with the handle's signature, float32 I/O), the TFLite converter call, and
ai-edge-quantizer's FP16 / dynamic INT8 / full INT8 passes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeport.errors import (
    ConversionError,
    MissingDependencyError,
    UnsupportedFormatError,
)
from edgeport.exporters import _torch_compat
from edgeport.exporters.base import ExportOptions, FormatSpec, error_line, require
from edgeport.sources.base import ModelHandle

SIGNATURE = "serving_default"
#: ai-edge-quantizer op names kept float in the full-integer artifact (float32 I/O, float sigmoid).
FULL_INT8_FLOAT_OPS = ("INPUT", "OUTPUT", "LOGISTIC", "DIV")
#: an output activation stays float: an INT8 sigmoid has a 1/256 step that erases low probabilities (SPEC §3)
FLOAT_OUTPUT_OPS = ("LOGISTIC", "SOFTMAX")
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
#: ops whose constant inputs are the weights a weight-quantizing pass (FP16, dynamic INT8) changes
WEIGHT_OPS = frozenset({"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL", "TRANSPOSE_CONV",
                        "EMBEDDING_LOOKUP"})
#: the route note each weight-quantizing precision adds
WEIGHT_PASS_NOTES = {"fp16": " + ai-edge-quantizer (float16 weights, float casting)",
                     "int8_dynamic": " + ai-edge-quantizer (dynamic_wi8_afp32)"}

#: a route's precision step: (float flatbuffer, handle, options, notes) -> artifact bytes
PrecisionStep = Callable[[bytes, ModelHandle, ExportOptions, dict], bytes]


def tf_module(purpose: str = "TFLite export of Keras models"):
    return require("tensorflow", "tensorflow-cpu", purpose, "tf")


def _schema():
    return require("ai_edge_litert.schema_py_generated", "ai-edge-litert", "Reading TFLite files", "litert")


def convert(conv) -> bytes:
    """Run a configured ``TFLiteConverter``; one clear line when it fails."""
    try:
        with _torch_compat.quiet():
            return bytes(conv.convert())
    except Exception as e:
        raise ConversionError(f"the TFLite converter failed: {type(e).__name__}: {error_line(e)}") from e


def precision_table(full_int8: PrecisionStep,
                    keep_regexes: Callable[[ModelHandle], list[str]] = lambda handle: []) -> dict[str, PrecisionStep]:
    """A route's precision table: FP32 as converted, FP16 / dynamic INT8 weights with ai-edge-quantizer (the
    ops ``keep_regexes(handle)`` matches stay float), and the route's own full-INT8 step."""
    def weights(precision: str) -> PrecisionStep:
        def step(data: bytes, handle: ModelHandle, options: ExportOptions, notes: dict) -> bytes:
            notes["route"] += WEIGHT_PASS_NOTES[precision]
            return quantize(data, precision, keep_regexes=keep_regexes(handle), per_tensor=options.per_tensor)

        return step

    return {"fp32": lambda data, handle, options, notes: data, "fp16": weights("fp16"),
            "int8_dynamic": weights("int8_dynamic"), "int8_full": full_int8}


def precision_step(table: dict[str, PrecisionStep], fmt: FormatSpec) -> PrecisionStep:
    """The step a route's precision table holds for ``fmt``, or one clear line."""
    try:
        return table[fmt.precision]
    except KeyError:
        raise UnsupportedFormatError(f"TFLite exporter has no precision '{fmt.precision}' (format {fmt.name})") from None


def write_checked(out: bytes, handle: ModelHandle, path: Path, notes: dict, t0: float) -> dict:
    """Every TFLite artifact's checks (builtin ops only, loads with the handle's signature), then write it."""
    ops = tflite_op_names(out)
    check_builtin_only(ops)
    notes["ops"] = sorted(set(ops))
    check_runs(out, handle)
    try:
        path.write_bytes(out)
    except BaseException:
        if path.is_file():
            path.unlink()
        raise
    notes["seconds"] = round(time.perf_counter() - t0, 3)
    return notes


# ----------------------------------------------------------------------------------------------- reading


def tflite_op_names(data: bytes) -> list[str]:
    """Operator codes used by a .tflite flatbuffer: builtin names (``FULLY_CONNECTED``) or ``CUSTOM:<code>``."""
    schema = _schema()
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


def _ops(data: bytes):
    """``(op code name, operator, subgraph, schema)`` for every operator of the first subgraph."""
    schema = _schema()
    codes = tflite_op_names(data)
    sg = schema.Model.GetRootAs(bytearray(data), 0).Subgraphs(0)
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        yield codes[op.OpcodeIndex()], op, sg, schema


def float_ops(data: bytes) -> list[str]:
    """``OP:output_name`` of every op computing in float (QUANTIZE/DEQUANTIZE at the float I/O excepted)."""
    out = []
    for code, op, sg, schema in _ops(data):
        if code in ("QUANTIZE", "DEQUANTIZE"):
            continue
        t = sg.Tensors(op.Outputs(0))
        if t.Type() == schema.TensorType.FLOAT32:
            out.append(f"{code}:{t.Name().decode().split(';')[0]}")
    return out


def unaligned_convolutions(data: bytes) -> list[str]:
    """``name (C channels)`` of the convolutions whose output channels are not a multiple of 8."""
    out = []
    for code, op, sg, _ in _ops(data):
        if code not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        t = sg.Tensors(op.Outputs(0))
        ch = int(t.Shape(t.ShapeLength() - 1)) if t.ShapeLength() else 0
        if ch % 8:
            out.append(f"{t.Name().decode().split(';')[0]} ({ch} channels)")
    return out


def kept_float_ops(data: bytes, *, full_integer: bool) -> list[str]:
    """``OP:tensor`` of what a quantized artifact really keeps float, read from the flatbuffer: ops computing
    in float32 (full integer; QUANTIZE/DEQUANTIZE at the float I/O excepted) or weight-bearing ops whose
    weights are still float32 constants (FP16 weights, dynamic INT8)."""
    if full_integer:
        return float_ops(data)
    schema = _schema()
    model = schema.Model.GetRootAs(bytearray(data), 0)
    out = []
    for code, op, sg, _ in _ops(data):
        if code not in WEIGHT_OPS:
            continue
        for j in range(op.InputsLength()):
            t = op.Inputs(j)
            if t < 0:
                continue
            tensor = sg.Tensors(t)
            constant = model.Buffers(tensor.Buffer()).DataLength() > 0 if tensor.Buffer() else False
            if constant and tensor.Type() == schema.TensorType.FLOAT32 and tensor.ShapeLength() >= 2:
                out.append(f"{code}:{sg.Tensors(op.Outputs(0)).Name().decode().split(';')[0]}")
                break
    return out


def layer_regexes(layers) -> list[str]:
    """Op-scope regexes for the ops of these Keras layers (op scopes read ``.../<layer>_1/op``)."""
    return [rf"(^|/){re.escape(n)}(_\d+)?/" for n in layers if n]


def input_side_regexes(data: bytes, keep_regexes: list[str]) -> list[str]:
    """Exact-name regexes for the ops that must stay float in front of the quantized part: the ops matched by
    ``keep_regexes`` and every SIN/COS op (a periodic encoding of raw inputs, the same rule as FP16), plus all
    ops between the graph inputs and those (e.g. the wrapper's column split in front of the geo encoding).
    Quantizing them would round the raw inputs to INT8 before the float encoding sees them (measured on a
    user's geo-style model with no keep_float: top-1 agreement 0.44, centred Pearson 0.55)."""
    name: list[str] = []
    producer: dict[int, int] = {}
    ops = []
    for k, (code, op, sg, _) in enumerate(_ops(data)):
        if not name:
            name = [sg.Tensors(i).Name().decode() for i in range(sg.TensorsLength())]
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        outs = [op.Outputs(j) for j in range(op.OutputsLength())]
        ops.append((code, ins, outs))
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


# ----------------------------------------------------------------------------------------------- checks


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


def _interpreter(data: bytes):
    litert = require("ai_edge_litert.interpreter", "ai-edge-litert", "Checking TFLite artifacts", "litert")
    return litert.Interpreter(model_content=data)


def check_runs(data: bytes, handle: ModelHandle) -> None:
    """The artifact must load in ai_edge_litert (no Flex delegate) and expose the handle's names."""
    try:
        it = _interpreter(data)
        sig = it.get_signature_list().get(SIGNATURE)
    except MissingDependencyError:
        raise
    except Exception as e:
        raise ConversionError(f"the TFLite artifact does not load in ai-edge-litert: {error_line(e)}") from e
    if sig is None:
        raise ConversionError(f"the TFLite artifact has no '{SIGNATURE}' signature")
    if sorted(sig["inputs"]) != sorted(handle.input_names) or sorted(sig["outputs"]) != sorted(handle.output_names):
        raise ConversionError(
            f"TFLite signature has inputs {sig['inputs']} / outputs {sig['outputs']}; expected "
            f"{handle.input_names} / {handle.output_names}"
        )


def non_float32_io(data: bytes) -> list[str]:
    """``name=dtype`` of the inputs and outputs that are not float32."""
    it = _interpreter(data)
    return [f"{d['name']}={np.dtype(d['dtype']).name}" for d in [*it.get_input_details(), *it.get_output_details()]
            if np.dtype(d["dtype"]) != np.float32]


def dynamic_batch(data: bytes) -> bool:
    """Every input and output has -1 on its first axis in the flatbuffer's shape signature."""
    it = _interpreter(data)
    details = [*it.get_input_details(), *it.get_output_details()]
    return all(len(d["shape_signature"]) and int(d["shape_signature"][0]) == -1 for d in details)


# ----------------------------------------------------------------------------------------------- quantization


def _import_quantizer():
    try:
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe
    except ImportError:
        raise MissingDependencyError("ai-edge-quantizer", "TFLite FP16/INT8 export", "litert") from None
    return algorithm_manager, qtyping, quantizer, recipe


#: the ai-edge-quantizer recipe of each weight-quantizing precision
_WEIGHT_PASSES = {
    "fp16": lambda q, am, op, gran: q.add_weight_only_config(
        regex=".*", operation_name=op, num_bits=16, algorithm_key=am.AlgorithmName.FLOAT_CASTING),
    "int8_dynamic": lambda q, am, op, gran: q.add_dynamic_config(
        regex=".*", operation_name=op, num_bits=8, granularity=gran),
}


def quantize(data: bytes, kind: str, *, keep_regexes: list[str] = (), per_tensor: bool = False) -> bytes:
    """FP16 weights (``kind="fp16"``) or dynamic-range INT8 weights (``"int8_dynamic"``) with ai-edge-quantizer;
    tensors whose names match ``keep_regexes`` stay float."""
    algorithm_manager, qtyping, quantizer, _ = _import_quantizer()
    q = quantizer.Quantizer(data)
    op = qtyping.TFLOperationName.ALL_SUPPORTED
    gran = qtyping.QuantGranularity.TENSORWISE if per_tensor else qtyping.QuantGranularity.CHANNELWISE
    _WEIGHT_PASSES[kind](q, algorithm_manager, op, gran)
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
    for rx, scoped in FULL_INT8_FLOAT_SCOPED_OPS.items():
        for float_op in scoped:
            q.update_quantization_recipe(regex=rx, operation_name=getattr(qtyping.TFLOperationName, float_op),
                                         algorithm_key=no_quant)
    try:
        with _torch_compat.quiet():
            calib = _calibrate(q, data, samples, min_max=handle.framework == "onnx")
    except Exception as e:
        raise ConversionError(f"TFLite INT8 calibration failed: {type(e).__name__}: {error_line(e)}") from e
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


def _calibrate(q, data: bytes, samples: list, *, min_max: bool):
    """Activation ranges for ``q``. ai-edge-quantizer keeps a moving average (factor 0.95) of each sample's
    min/max, which narrows every range when samples are single rows; with ``min_max`` (ONNX sources) the
    ranges are the true min/max over all samples (measured on a batch-1 ONNX test model: logits cosine
    0.944 with the moving average, 0.9987 with min/max; benchmarks/results/onnx_source.json)."""
    if not min_max:
        return q.calibrate({SIGNATURE: samples}, num_threads=1)
    from ai_edge_quantizer import calibrator
    from ai_edge_quantizer.utils import qsv_utils

    c = calibrator.Calibrator(data, num_threads=1, qsv_update_func=qsv_utils.min_max_update)
    c.calibrate({SIGNATURE: samples}, q._recipe_manager)  # what Quantizer.calibrate does, with the update rule
    return c.get_model_qsvs()


def _run_quantizer(q, calibration=None) -> bytes:
    try:
        with _torch_compat.quiet():
            result = q.quantize(calibration) if calibration is not None else q.quantize()
    except Exception as e:
        raise ConversionError(f"ai-edge-quantizer failed: {type(e).__name__}: {error_line(e)}") from e
    return bytes(result.quantized_model)

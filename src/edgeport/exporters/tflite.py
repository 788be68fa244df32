"""TFLite artifacts from PyTorch: litert-torch (FP32, fixed batch) then ai-edge-quantizer for FP16/INT8.

Route chosen by measurement (docs/dev/tflite-route.md): litert-torch needs no TensorFlow, lowers exact GELU
to the builtin op, keeps input/output names in a signature, and converts in ~2 s; the ONNX -> onnx2tf route
gave a dynamic batch but took ~11 s, lost the output names and rounds the encoding constants in its FP16
file. Every artifact is checked to hold builtin operators only and to run in ``ai_edge_litert``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edgeport.errors import (
    ConversionError,
    MissingDependencyError,
    UnsupportedFormatError,
)
from edgeport.exporters import _torch_compat
from edgeport.exporters.base import ExportOptions, FormatSpec
from edgeport.sources.base import ModelHandle

log = logging.getLogger(__name__)

SIGNATURE = "serving_default"
#: ai-edge-quantizer op names kept float in the full-integer artifact (float32 I/O, float sigmoid).
FULL_INT8_FLOAT_OPS = ("INPUT", "OUTPUT", "LOGISTIC")
#: periodic encodings of raw inputs (and every op in front of them) stay float in the full-integer artifact.
TRIG_OPS = frozenset({"SIN", "COS"})
#: scope regex -> op names kept float inside it in the full-integer artifact. LayerNorm is decomposed into
#: MEAN / SQUARED_DIFFERENCE / RSQRT / MUL / ADD / SUB; in INT8 its variance is coarse. Measured on the geo
#: family checkpoint (docs/dev/tflite-route.md): all INT8 top-1 0.83 (fails); these ops float 0.90 (passes),
#: 212 kB instead of 202 kB. Fully connected layers stay INT8 (matching the op name, not just the scope).
FULL_INT8_FLOAT_SCOPED_OPS: dict[str, tuple[str, ...]] = {
    r"normalization\.LayerNorm_": ("MEAN", "SQUARED_DIFFERENCE", "RSQRT", "MUL", "ADD", "SUB"),
}


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
    batch = options.tflite_batch
    notes: dict = {"format": fmt.name, "route": "litert-torch", "versions": _versions(), "fixed_batch": batch,
                   "dynamic_batch": False, "signature": SIGNATURE}
    data = _torch_compat.litert_convert(handle, batch=batch)
    notes["convert_seconds"] = round(time.perf_counter() - t0, 3)
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
        out = quantize_full_int8(data, handle, options, keep_regexes=keep, notes=notes)
        notes["route"] += " + ai-edge-quantizer (static_wi8_ai8, float32 I/O)"
    else:
        raise UnsupportedFormatError(f"TFLite exporter has no precision '{fmt.precision}' (format {fmt.name})")
    if fmt.precision != "fp32":
        notes["keep_float_modules"] = list(handle.keep_float)
        notes["keep_float_regexes"] = keep
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
        f"fixed batch {batch}: feed rows {batch} at a time (pad the last chunk), or use "
        "edgeport.runtimes.open_runner('litert', path).run(feeds)"
    )
    return notes


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
                       notes: dict) -> bytes:
    """Full-integer INT8 internals (weights and activations), float32 I/O, calibrated with the handle's inputs."""
    algorithm_manager, qtyping, quantizer, _ = _import_quantizer()
    if handle.calibration_inputs is None:
        raise ConversionError("tflite_int8_full needs calibration data: give a data folder, or use tflite_int8")
    batch = options.tflite_batch
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
    notes.update({
        "calibration_rows": n,
        "per_channel": not options.per_tensor,
        "float_ops": list(FULL_INT8_FLOAT_OPS),
        "float_ops_in_scope": {rx: list(o) for rx, o in FULL_INT8_FLOAT_SCOPED_OPS.items()},
        "input_side_ops_float": len(keep_regexes) - len(keep_regexes_in),
    })
    return _run_quantizer(q, calib)


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
    for pkg in ("torch", "litert-torch", "litert-converter", "ai-edge-quantizer", "ai-edge-litert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return float(max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).max() for k in a))

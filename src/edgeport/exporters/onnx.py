"""ONNX artifacts: FP32, FP16 (fragile parts kept FP32), INT8 dynamic and INT8 static QDQ.

Every precision starts from one FP32 graph (``source_onnx``): torch sources go through the dynamo exporter,
Keras sources through tf2onnx (``onnx_keras``), each with names kept and a dynamic batch. The FP16 and INT8
steps (the ``PRECISIONS`` table) then work on that graph, keeping in FP32 the nodes of ``handle.keep_float``
modules / layers and of the layers the model's family keeps float (mapped through the dynamo exporter's
module-path metadata, or tf2onnx's TF name scopes). Graph edits live in ``onnx_graph``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edgeport.errors import (
    ConversionError,
    MissingDependencyError,
    UnsupportedFormatError,
)
from edgeport.exporters import _torch_compat
from edgeport.exporters import onnx_graph as G
from edgeport.exporters.base import ExportOptions, FormatSpec, error_line, require
from edgeport.families import family_of
from edgeport.reporting.versions import package_versions
from edgeport.sources.base import ModelHandle

log = logging.getLogger(__name__)

#: Op types kept in FP32 in the FP16 artifact (SPEC §2: LayerNormalization and softmax-style reductions).
FP16_FRAGILE_OPS = ("LayerNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceL2", "Pow",
                    "Sqrt", "Reciprocal", "Log", "Exp")
#: Ops whose argument needs FP32 resolution in the FP16 artifact, with everything between the graph inputs and
#: them: trig (the angle) and Log (a dB scale: FP16 subnormals below 6e-5 step by 6e-8, a 30% error at -70 dB;
#: the demo DS-CNN with db scaling: max diff 0.115 -> 0.0146 with its chain FP32; docs/dev/fp16.md).
FP16_INPUT_CHAIN_OPS = (*G.TRIG_OPS, "Log")
#: Op types the static QDQ quantizer touches by default: compute ops only (measured: quantizing every op of a
#: geo model, raw coordinates included, costs 0.31 max diff; Gemm/MatMul only 0.055).
STATIC_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def export(handle: ModelHandle, *, fmt: FormatSpec, path: Path, options: ExportOptions) -> dict:
    """Write the ONNX artifact for ``fmt`` at ``path``; return manifest notes."""
    onnx = _import_onnx()
    path = Path(path)
    t0 = time.perf_counter()
    step = PRECISIONS.get(fmt.precision)
    if step is None:
        raise UnsupportedFormatError(f"ONNX exporter has no precision '{fmt.precision}' (format {fmt.name})")
    pkgs = VERSIONS.get(handle.framework, ())
    notes: dict = {"format": fmt.name, "opset": options.opset, "versions": package_versions((*pkgs, *VERSIONS["*"]))}
    model = source_onnx(handle, options, notes)
    notes["source_route"] = notes.get("route")
    try:
        out = step(model, handle, options, notes)
        _check_io(out, handle, fp16_io=(fmt.precision == "fp16" and options.fp16_io))
        onnx.save_model(out, str(path))
    except BaseException:
        _remove(path)
        raise
    fixed = handle.notes.get("fixed_batch") if handle.framework == "onnx" else None  # an ONNX source's own batch
    notes["dynamic_batch"] = fixed is None
    notes["fixed_batch"] = fixed
    notes["seconds"] = round(time.perf_counter() - t0, 3)
    return notes


# ----------------------------------------------------------------------------------------------- source


def source_onnx(handle: ModelHandle, options: ExportOptions, notes: dict | None = None):
    """The FP32 ONNX graph of a handle (dispatch on the framework)."""
    notes = notes if notes is not None else {}
    if handle.framework == "torch":
        t0 = time.perf_counter()
        legacy = options.torch_onnx_route == "torchscript"
        model = _torch_compat.torch_to_onnx_proto(handle, opset=options.opset, dynamo=not legacy)
        notes["route"] = f"torch.onnx.export(dynamo={not legacy})"
        notes["export_seconds"] = round(time.perf_counter() - t0, 3)
        return model
    if handle.framework == "onnx" and handle.model is not None and hasattr(handle.model, "graph"):
        notes["route"] = "ONNX graph as given"  # an in-memory ModelProto (e.g. a disease head built with onnx.helper)
        notes["opset"] = next((o.version for o in handle.model.opset_import if o.domain in ("", "ai.onnx")), None)
        return G.copy_model(handle.model)
    if handle.framework == "keras":
        from edgeport.exporters import onnx_keras

        t0 = time.perf_counter()
        model = onnx_keras.keras_to_onnx_proto(handle, opset=options.opset)
        notes["route"] = "tf2onnx.convert.from_function"
        notes["opset"] = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), options.opset)
        notes["export_seconds"] = round(time.perf_counter() - t0, 3)
        return model
    raise UnsupportedFormatError(
        f"ONNX export from a '{handle.framework}' source is not implemented yet; supported: torch, keras"
    )


# ----------------------------------------------------------------------------------------------- graph helpers


def kept_nodes(model, handle: ModelHandle, options: ExportOptions | None = None, *, quantized: bool = True) -> list[str]:
    """The nodes of ``handle.keep_float`` (torch module paths, or Keras layer names) in ``model``; for Keras
    sources in a quantized format also the layers the model's family keeps float (``options.onnx_float_layers``
    replaces the family's list), and the auto-fallback's layers (``options.fallback_float``)."""
    extra_nodes = fallback_nodes(model, options.fallback_float) if options is not None and quantized else []
    if handle.framework == "keras":
        from edgeport.exporters import onnx_keras

        layers = tuple(handle.keep_float)
        family = family_of(handle)
        if quantized and family is not None:
            override = options.onnx_float_layers if options is not None else None
            layers = tuple(dict.fromkeys([*layers, *family.float_layers(handle, backend="onnx", override=override)]))
        names = onnx_keras.layer_nodes(model, layers)
        if layers and not names:
            log.warning("keep_float layers %s matched no ONNX node", list(layers))
        return list(dict.fromkeys(names + extra_nodes))
    return list(dict.fromkeys(keep_float_nodes(model, handle.keep_float) + extra_nodes))


def fallback_nodes(model, layers: Iterable[str]) -> list[str]:
    """Nodes of the auto-fallback's float layers (``ExportOptions.fallback_float``), each one a torch module
    path (dynamo scope metadata, below the output-ordering wrapper), a Keras layer (tf2onnx scope) or a node
    name; nothing in front of them. A layer that matches no node is an error: the fallback would be a no-op."""
    from edgeport.exporters import onnx_keras

    out = []
    for layer in layers:
        path = f"{_torch_compat.WRAPPED_ATTR}.{layer}"
        hit = [n.name for n in model.graph.node
               if n.name == layer or any(s == path or s.startswith(path + ".") for s in _torch_compat.node_scopes(n))]
        hit = hit or onnx_keras.layer_nodes(model, [layer])
        if not hit:
            raise ConversionError(f"fallback layer '{layer}' matches no node of the ONNX graph")
        out += hit
    return out


def keep_float_nodes(model, module_paths: Iterable[str]) -> list[str]:
    """Names of the nodes created inside any of ``module_paths`` (dynamo name-scope metadata). When a path
    matches no node (metadata absent), fall back to the input-side chain that feeds trigonometric ops."""
    # the exporter wraps handle.model as the attribute "model" of an output-ordering module
    paths = [f"{_torch_compat.WRAPPED_ATTR}.{p}" for p in module_paths if p]
    if not paths:
        return []
    names = []
    for node in model.graph.node:
        scopes = _torch_compat.node_scopes(node)
        if any(p in scopes for p in paths):
            names.append(node.name)
    if not names:
        names = G.input_chain_nodes(model)
        if names:
            log.warning("keep_float %s matched no node by module path; keeping the %d nodes that feed "
                        "trigonometric ops in float instead", paths, len(names))
        else:
            log.warning("keep_float %s matched no ONNX node; nothing is kept float for it", paths)
    return names


# ----------------------------------------------------------------------------------------------- FP16


def to_fp16(model, handle: ModelHandle, options: ExportOptions, notes: dict):
    """FP16 weights and activations; keep_float modules and fragile ops stay FP32; FP32 I/O unless fp16_io."""
    kept = kept_nodes(model, handle, options, quantized=False)
    # trig and log ops fed by raw inputs stay FP32 with what feeds them, even without keep_float (measured on a
    # geo-like model: rounding the angle to FP16 costs 0.0062 max diff; kept FP32, 0.00065)
    chain = [n for n in G.input_chain_nodes(model, FP16_INPUT_CHAIN_OPS) if n not in set(kept)]
    out, info = convert_fp16(model, keep_nodes=kept + chain, block_ops=FP16_FRAGILE_OPS, fp16_io=options.fp16_io)
    info["route"] = f"{notes.get('source_route')} + onnxconverter-common float16"
    notes.update(info)
    notes["trig_nodes_kept_fp32"] = len(chain)  # key kept for earlier manifests: trig and log chains
    notes["keep_float_modules"] = list(handle.keep_float)
    return out


def convert_fp16(model, *, keep_nodes: Iterable[str] = (), block_ops: Iterable[str] = (), fp16_io: bool = False):
    """The FP16 conversion with explicit choices (the benchmark calls this to measure each choice)."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise MissingDependencyError("onnxconverter-common", "ONNX FP16 export", "onnx") from None
    from onnx import TensorProto

    m = G.copy_model(model)
    del m.graph.value_info[:]
    copies = G.unshare_initializers(m)
    block_ops = list(block_ops)
    keep_nodes = list(keep_nodes)
    fragile = [n.name for n in m.graph.node if n.op_type in block_ops]
    block = sorted(set(keep_nodes) | set(fragile))
    try:
        with _torch_compat.quiet():
            out = float16.convert_float_to_float16(
                m,
                keep_io_types=not fp16_io,
                node_block_list=block,
                op_block_list=[],  # the converter's default list holds ops ORT runs in FP16 fine; we choose
                disable_shape_infer=False,
            )
    except Exception as e:
        raise ConversionError(f"FP16 conversion failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
    retargeted = G.retarget_float_casts(out, set(block))
    retargeted += G.cast_mixed_inputs(out)
    want = TensorProto.FLOAT16 if fp16_io else TensorProto.FLOAT
    casted = G.force_output_types(out, want)
    folded = G.fold_cast_roundtrips(out)
    info = {
        "route": "torch.onnx.export(dynamo=True) + onnxconverter-common float16",
        "fp16_io": fp16_io,
        "nodes_kept_fp32": block,
        "ops_kept_fp32": sorted({n.op_type for n in m.graph.node if n.name in set(block)}),
        "initializers_unshared": copies,
        "outputs_recast": casted,
        "fp16_roundtrips_removed": folded,
        "casts_retargeted_fp16": retargeted,
    }
    return out, info


# ----------------------------------------------------------------------------------------------- INT8


def _clean_for_quant(model):
    """Drop stale value_info (dynamo's shapes made ORT quantization fail with ShapeInferenceError) and
    re-infer shapes."""
    import onnx

    m = G.copy_model(model)
    del m.graph.value_info[:]
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    except Exception as e:  # noqa: BLE001 - shape inference is an aid, the quantizer re-infers
        log.info("shape inference before quantization skipped: %s", e)
    return m


#: Rows on which ``to_int8_dynamic`` compares its two weight ranges with the FP32 graph (never validation rows).
RANGE_TRIAL_ROWS = 64
RANGE_TRIAL_SEED = 7919


#: the dynamic-INT8 weight encodings tried (name -> ONNX Runtime QuantType name, reduce_range); none of them
#: saturates on any x86 kernel, so the artifact behaves the same on every CPU (the first is used without trial rows)
INT8_DYNAMIC_ENCODINGS = {"int8_7bit": ("QInt8", True), "uint8_8bit": ("QUInt8", False)}
INT8_DYNAMIC_WEIGHTS = tuple(INT8_DYNAMIC_ENCODINGS)


def to_int8_dynamic(model, handle: ModelHandle, options: ExportOptions, notes: dict):
    """INT8 weights, activations quantized at run time (ONNX Runtime ``quantize_dynamic``).

    Two weight encodings, both free of the int16 saturation that ONNX Runtime's u8 x s8 kernels show on x86
    CPUs without VNNI (full-range QInt8 weights: max diff 0.29 on the geo-like module there, none on a VNNI
    CPU, so a choice measured on one machine would not hold on another): 7-bit QInt8 (``reduce_range``) and
    full 8-bit QUInt8 (the u8 x u8 kernels). Both are made and the one closer to the FP32 graph on trial rows
    is kept (docs/dev/fp16.md).
    """
    quant = _import_ort_quant()
    import onnx

    m = _clean_for_quant(model)
    m = G.gemm_to_matmul(m)
    kept = kept_nodes(m, handle, options)
    feeds = _trial_feeds(handle)
    candidates: dict[str, object] = {}
    trial: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=options.work_dir) as tmp:
        src = Path(tmp) / "fp32.onnx"
        onnx.save_model(m, str(src))
        reference = _ort_outputs(src, feeds) if feeds is not None else None
        for name in INT8_DYNAMIC_WEIGHTS if feeds is not None else INT8_DYNAMIC_WEIGHTS[:1]:
            weight_type, reduce_range = INT8_DYNAMIC_ENCODINGS[name]
            dst = Path(tmp) / f"int8_{name}.onnx"
            try:
                with _torch_compat.quiet():
                    quant.quantize_dynamic(
                        str(src), str(dst), weight_type=getattr(quant.QuantType, weight_type),
                        per_channel=not options.per_tensor, reduce_range=reduce_range, nodes_to_exclude=kept or None,
                    )
            except Exception as e:
                raise ConversionError(
                    f"ONNX Runtime dynamic quantization failed: {type(e).__name__}: {error_line(e)}") from e
            candidates[name] = onnx.load_model(str(dst))
            if reference is not None:  # mean absolute difference from the FP32 graph on the trial rows
                got = _ort_outputs(dst, feeds)
                trial[name] = float(np.mean([np.mean(np.abs(got[k] - reference[k])) for k in reference]))
    chosen = min(trial, key=trial.get) if trial else INT8_DYNAMIC_WEIGHTS[0]
    out = candidates[chosen]
    notes.update({
        "route": f"{notes.get('source_route')} + onnxruntime quantize_dynamic ({INT8_DYNAMIC_ENCODINGS[chosen][0]})",
        "per_channel": not options.per_tensor,
        "weights": chosen,
        "weights_trial_mean_abs_diff": {k: round(v, 6) for k, v in trial.items()} or None,
        "nodes_kept_float": kept,
        "keep_float_modules": list(handle.keep_float),
        "quantized_nodes": sum(1 for n in out.graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeLinear",
                                                                            "ConvInteger", "DynamicQuantizeMatMul")),
    })
    return out


def _trial_feeds(handle: ModelHandle) -> dict[str, np.ndarray] | None:
    """Rows to choose a quantization setting on: calibration rows when the handle has them, else reference
    rows drawn with a seed validation never uses. None when the handle gives neither."""
    for draw in (handle.calibration_inputs, handle.reference_inputs):
        if draw is None:
            continue
        try:
            feeds = draw(RANGE_TRIAL_ROWS, RANGE_TRIAL_SEED)
        except Exception as e:  # noqa: BLE001 - the trial is an aid; quantization goes on without it
            log.info("no trial rows for the dynamic INT8 weight range (%s); 7-bit weights kept", e)
            return None
        return {k: np.asarray(v)[:RANGE_TRIAL_ROWS] for k, v in feeds.items()}
    return None


def _ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of the ONNX file at ``path`` on ``feeds`` (the project's ONNX Runtime runner), as float64."""
    from edgeport.runtimes.onnxruntime import OrtRunner

    return {k: np.asarray(v, np.float64) for k, v in OrtRunner.open(path).run(feeds)[0].items()}


def default_static_op_types(handle: ModelHandle) -> tuple[str, ...]:
    """Op types quantized by ``onnx_int8_static`` unless ``options.static_op_types`` says otherwise: the
    family's (when it has a rule) or ``STATIC_OP_TYPES``."""
    family = family_of(handle)
    return (family.static_op_types(handle) if family is not None else None) or STATIC_OP_TYPES


#: Calibration rows whose intermediate outputs ONNX Runtime holds at once (Percentile/Entropy keep all of them).
CALIBRATION_STRIDE = ExportOptions.calibration_stride


def calibration_stride(n: int, cap: int = CALIBRATION_STRIDE) -> int:
    """The largest stride <= ``cap`` that divides ``n`` (ONNX Runtime's strided calibration requires it)."""
    cap = max(1, min(int(cap), int(n)))
    return next(d for d in range(cap, 0, -1) if n % d == 0)


def to_int8_static(model, handle: ModelHandle, options: ExportOptions, notes: dict):
    """QDQ INT8 weights (per-channel) and activations, calibrated on ``handle.calibration_inputs``."""
    quant = _import_ort_quant()
    import onnx

    if handle.calibration_inputs is None:
        raise ConversionError(
            "onnx_int8_static needs calibration data: give a data folder / --reference-inputs, "
            "or use onnx_int8 (dynamic quantization)"
        )
    feeds = handle.calibration_inputs(options.calibration_samples, 0)
    n = int(next(iter(feeds.values())).shape[0])
    m = _clean_for_quant(model)
    kept = kept_nodes(m, handle, options)
    chosen = options.static_op_types is not None
    op_types = list(options.static_op_types if chosen else default_static_op_types(handle))
    method = {
        "minmax": quant.CalibrationMethod.MinMax,
        "percentile": quant.CalibrationMethod.Percentile,
        "entropy": quant.CalibrationMethod.Entropy,
    }[options.calibration_method]

    class Reader(quant.CalibrationDataReader):
        """One row per step over rows [start, end); ONNX Runtime's strided calibration sets the range."""

        def __init__(self):
            self._start, self._end = 0, n
            self._i = 0

        def __len__(self):
            return n

        def set_range(self, start_index: int, end_index: int):
            self._start, self._end = int(start_index), min(int(end_index), n)
            self._i = self._start

        def get_next(self):
            if self._i >= self._end:
                return None
            row = {k: v[self._i : self._i + 1] for k, v in feeds.items()}
            self._i += 1
            return row

        def rewind(self):
            self._i = self._start

    # Stream the calibration: ONNX Runtime's Percentile/Entropy calibrators keep every intermediate output of
    # every sample until the reader is exhausted (``CalibMaxIntermediateOutputs`` is honoured by MinMax only);
    # ``CalibStridedMinMax`` (despite its name, any method) feeds them ``stride`` rows at a time and merges the
    # ranges / histograms between strides. Peak memory: benchmarks/results/onnx_keras_calibration.json.
    stride = calibration_stride(n, options.calibration_stride)
    extra = {"CalibStridedMinMax": stride}
    fallback = None
    with tempfile.TemporaryDirectory(dir=options.work_dir) as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(m, str(src))

        def run(types):
            with _torch_compat.quiet():
                quant.quantize_static(
                    str(src), str(dst), Reader(), quant_format=quant.QuantFormat.QDQ,
                    activation_type=quant.QuantType.QInt8, weight_type=quant.QuantType.QInt8,
                    per_channel=not options.per_tensor, calibrate_method=method, reduce_range=True,
                    op_types_to_quantize=types, nodes_to_exclude=kept or None,
                    extra_options=extra,
                )

        try:
            try:
                run(op_types)
            except ValueError as e:
                # Percentile's histogram of a near-constant tensor (e.g. a saturated squeeze-excitation gate
                # fed to Mul) fails in numpy ("Too many bins for data range"); the compute ops alone calibrate.
                if "Too many bins" not in str(e) or chosen or set(op_types) <= set(STATIC_OP_TYPES):
                    raise
                fallback = f"{error_line(e)}: quantized {list(STATIC_OP_TYPES)} only"
                log.warning("static calibration (%s) failed on %s; %s", options.calibration_method, op_types, fallback)
                op_types = list(STATIC_OP_TYPES)
                run(op_types)
        except Exception as e:
            raise ConversionError(f"ONNX Runtime static quantization failed: {type(e).__name__}: {error_line(e)}") from e
        out = onnx.load_model(str(dst))
    notes.update({
        "route": f"{notes.get('source_route')} + onnxruntime quantize_static (QDQ, QInt8)",
        "per_channel": not options.per_tensor,
        "calibration_method": options.calibration_method,
        "calibration_rows": n,
        "calibration_stride": stride,
        "op_types_quantized": op_types,
        "op_types_fallback": fallback,
        "nodes_kept_float": kept,
        "keep_float_modules": list(handle.keep_float),
    })
    return out


#: precision -> the step from the FP32 graph: (model, handle, options, notes) -> model
PRECISIONS = {
    "fp32": lambda model, handle, options, notes: model,
    "fp16": to_fp16,
    "int8_dynamic": to_int8_dynamic,
    "int8_static": to_int8_static,
}
#: packages whose versions the notes record: per source framework, and for every ONNX artifact ("*")
VERSIONS = {"torch": ("torch", "onnxscript"), "keras": ("tensorflow-cpu", "keras", "tf2onnx"),
            "*": ("onnx", "onnxruntime", "onnxconverter-common")}


# ----------------------------------------------------------------------------------------------- misc


def _check_io(model, handle: ModelHandle, *, fp16_io: bool) -> None:
    """Names and order of inputs/outputs must be the handle's; element types float32 (or float16 with fp16_io)."""
    from onnx import TensorProto

    ins = [i.name for i in model.graph.input]
    outs = [o.name for o in model.graph.output]
    if ins != list(handle.input_names) or outs != list(handle.output_names):
        raise ConversionError(
            f"exported ONNX has inputs {ins} / outputs {outs}; expected {handle.input_names} / {handle.output_names}"
        )
    want = TensorProto.FLOAT16 if fp16_io else TensorProto.FLOAT
    for vi, spec in [(v, s) for v, s in zip(model.graph.input, handle.inputs, strict=True)] + [
        (v, s) for v, s in zip(model.graph.output, handle.outputs, strict=True)
    ]:
        et = G.float_type_of(vi)
        if spec.dtype.startswith("float") and et != want:
            raise ConversionError(f"'{vi.name}' has ONNX element type {et}, expected {want}")


def _remove(path: Path) -> None:
    if path.is_file():
        path.unlink()


def _import_onnx():
    return require("onnx", "onnx", "ONNX export", "onnx")


def _import_ort_quant():
    return require("onnxruntime.quantization", "onnxruntime", "ONNX INT8 quantization", "onnx")

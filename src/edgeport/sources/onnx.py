"""An ONNX file as a source: the graph (weights loaded, FP32, names safe for quantization) in a ModelHandle.

What third-party files do, and what the loader does about it:

- weights in external data files: each one is checked to exist beside the model (inside its folder) and to
  hold the bytes the graph points at, then loaded into the graph;
- FP16 models (weights, I/O or compute): brought back to FP32 first (weights exactly; every FP16 type,
  cast and constant becomes FP32), so that every format starts from one FP32 graph; the FP16 file's own
  outputs are compared with the FP32 graph's and the difference recorded in the notes;
- symbolic and fixed batch dims: axis 0 is the batch; a fixed size there is kept (``notes["fixed_batch"]``)
  and the runners feed rows that many at a time; other symbolic dimensions take ``sources.inputs.DEFAULT_DIM``
  in random reference inputs unless ``--input-shape NAME=DIMS`` fixes them;
- several inputs and outputs: names and order kept;
- tensor names that collide with the names ONNX Runtime's quantizers derive (``x`` and ``x_scale``, ``x`` and
  ``x_quantized``, ...): the colliding intermediate tensors are renamed before any work (the quantized file
  otherwise fails to load), and duplicate or empty node names are made unique;
- opsets 13-21 (measured); older graphs are converted to opset 13 with ``onnx.version_converter``.

The reference of every artifact is this FP32 graph run in ONNX Runtime (``OrtRunner.from_handle``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, MissingDependencyError, SourceError
from edgeport.sources.base import ModelHandle, TensorSpec, check_model_file
from edgeport.sources.inputs import DEFAULT_DIM, Ranges, attach_random_inputs

log = logging.getLogger(__name__)

SUFFIX = ".onnx"
#: opsets measured to load, export and quantize (tests/sources/test_onnx_source.py); older ones are converted
MIN_OPSET, MAX_OPSET = 13, 21
#: suffixes ONNX Runtime's quantizers (static QDQ, dynamic, weight-only) append to tensor and node names
ORT_DERIVED_SUFFIXES = (
    "_quantized", "_scale", "_zero_point", "_QuantizeLinear", "_QuantizeLinear_Output", "_QuantizeLinear_Input",
    "_DequantizeLinear", "_DequantizeLinear_Output", "_DequantizeLinear_Input", "_output_quantized", "_quant",
    "_ReshapedSavedOutput", "_Transposed",
)
#: rows on which an FP16 source's own outputs are compared with its FP32 graph (notes only, not a gate)
FP16_CHECK_ROWS = 16


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", "Reading ONNX sources", "onnx") from None
    return onnx


def load_onnx(source, *, name: str | None = None, input_shapes: tuple[TensorSpec, ...] = (),
              output_names: tuple[str, ...] = (), input_ranges: Ranges | None = None,
              default_dim: int = DEFAULT_DIM, factory=None, wrapper=None, **_ignored) -> ModelHandle:
    """Load ``X.onnx`` (and its external data) into a handle whose model is the FP32 ``ModelProto``."""
    if factory is not None or wrapper is not None:
        flag = "--factory" if factory is not None else "--wrapper"
        raise ConfigError(f"{flag} applies to PyTorch checkpoints; an ONNX file is exported as it is")
    path = Path(source)
    check_model_file(path, "ONNX file")
    model = read_onnx(path)
    notes: dict = {"source_opset": opset_of(model)}
    model = _upgrade_opset(model, notes)
    fp16 = fp16_to_fp32(model)
    if fp16["tensors"] or fp16["types"]:
        notes["fp16_source"] = fp16
    renamed = rename_colliding(model)
    if renamed:
        notes["renamed_tensors"] = renamed
        log.info("%s: renamed %d tensor(s) whose names collide with ONNX Runtime's quantization names",
                 path.name, len(renamed))
    inputs, outputs = graph_specs(model)
    inputs = _apply_input_shapes(inputs, input_shapes)
    if output_names and tuple(output_names) != tuple(t.name for t in outputs):
        raise ConfigError(f"--output-names {list(output_names)}: an ONNX source keeps its own output names "
                          f"{[t.name for t in outputs]}; drop the flag")
    fixed = {t.shape[0] for t in inputs if t.shape and t.shape[0] is not None}
    notes["fixed_batch"] = int(next(iter(fixed))) if len(fixed) == 1 and all(t.shape and t.shape[0] for t in inputs) \
        else None
    _check_runs(model, path)
    handle = ModelHandle(name=name or path.stem, framework="onnx", model=model, inputs=inputs, outputs=outputs,
                         source_path=path, notes=notes)
    lic = path.parent / "MODEL_LICENSE.txt"
    if lic.is_file():
        handle.license_file = lic
    attach_random_inputs(handle, input_ranges, default_dim)
    if "fp16_source" in notes:
        notes["fp16_source"]["max_abs_diff_fp16_vs_fp32"] = _fp16_gap(path, handle)
    return handle


# ----------------------------------------------------------------------------------------------- reading


def read_onnx(path: Path):
    """The ModelProto of ``path`` with every external data file checked and loaded; one line otherwise."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        raise SourceError(f"{path} is not a readable ONNX file ({type(e).__name__}); give a model saved with "
                          "onnx.save or an exporter") from None
    if not model.ir_version or not model.graph.node or not model.graph.output:
        raise SourceError(f"{path} is not an ONNX model (no graph nodes or outputs were found in it)")
    _check_external_data(model, path)
    try:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as e:
        raise SourceError(f"the external data of {path.name} cannot be read ({str(e).splitlines()[0][:200]}); "
                          "copy the model's data file(s) next to it again") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise SourceError(f"{path.name} is not a valid ONNX model: {str(e).strip().splitlines()[0][:300]}") from None
    return model


def _all_tensors(model):
    """Every TensorProto of the model: initializers and tensor attributes, in subgraphs too."""
    def walk(graph):
        yield from graph.initializer
        for node in graph.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("g"):
                    yield from walk(a.g)
                for g in a.graphs:
                    yield from walk(g)

    return walk(model.graph)


def all_graphs(graph):
    """The graph and every subgraph (If / Loop / Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("g"):
                yield from all_graphs(a.g)
            for g in a.graphs:
                yield from all_graphs(g)


def _check_external_data(model, path: Path) -> None:
    """Every external data file named by the graph exists inside the model's folder and is long enough."""
    from onnx import TensorProto

    base = path.parent.resolve()
    for t in _all_tensors(model):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        target = (base / loc).resolve()
        if not loc or os.path.isabs(loc) or base not in (target, *target.parents):
            raise SourceError(f"{path.name}: tensor '{t.name}' points at external data '{loc}' outside the model's "
                              "folder; edgeport reads data files only from beside the .onnx")
        if not target.is_file():
            raise SourceError(f"{path.name} keeps its weights in the external data file '{loc}', which is not in "
                              f"{base}: copy it next to the .onnx")
        need = int(info.get("offset", 0) or 0) + int(info.get("length", 0) or 0)
        if target.stat().st_size < need:
            raise SourceError(f"external data file '{loc}' of {path.name} holds {target.stat().st_size} bytes, the "
                              f"graph needs {need}: the file is truncated; copy it again")


def opset_of(model) -> int | None:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _upgrade_opset(model, notes: dict):
    opset = notes["source_opset"]
    if opset is None or opset >= MIN_OPSET:
        if opset is not None and opset > MAX_OPSET:
            log.warning("opset %d is above the range edgeport measured (%d-%d)", opset, MIN_OPSET, MAX_OPSET)
        return model
    from onnx import version_converter

    try:
        model = version_converter.convert_version(model, MIN_OPSET)
    except Exception as e:  # noqa: BLE001 - the converter raises many types; one line for the user
        raise SourceError(f"opset {opset} is below {MIN_OPSET} and onnx's version converter cannot raise it "
                          f"({str(e).strip().splitlines()[0][:200]}); export the model again at opset "
                          f">= {MIN_OPSET}") from None
    notes["opset_converted_to"] = MIN_OPSET
    return model


def _check_runs(model, path: Path) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", "Running ONNX sources", "onnx") from None
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own types
        raise SourceError(f"ONNX Runtime cannot load {path.name}: {str(e).strip().splitlines()[0][:300]}") from None


# ----------------------------------------------------------------------------------------------- specs


def _spec(vi) -> TensorSpec:
    from onnx import helper

    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise SourceError(f"'{vi.name}' is not a tensor ({vi.type.WhichOneof('value')}); edgeport handles tensor "
                          "inputs and outputs only")
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).name
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim)
    return TensorSpec(vi.name, shape, dtype)


def graph_specs(model) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs (initializers listed as inputs by old exporters excluded) and outputs of the graph."""
    inits = {i.name for i in model.graph.initializer}
    inputs = tuple(_spec(v) for v in model.graph.input if v.name not in inits)
    outputs = tuple(_spec(v) for v in model.graph.output)
    return inputs, outputs


def _apply_input_shapes(inputs: tuple[TensorSpec, ...], given: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
    """``--input-shape NAME=DIMS`` fixes the symbolic dimensions of an input; it may not contradict a fixed one."""
    by_name = {t.name: t for t in given}
    unknown = sorted(set(by_name) - {t.name for t in inputs})
    if unknown:
        raise ConfigError(f"--input-shape names {unknown}; the model's inputs are {[t.name for t in inputs]}")
    out = []
    for t in inputs:
        g = by_name.get(t.name)
        if g is None:
            out.append(t)
            continue
        if len(g.shape) != len(t.shape) or any(a is not None and b is not None and a != b
                                                for a, b in zip(t.shape, g.shape, strict=True)):
            shown = ",".join("N" if d is None else str(d) for d in t.shape)
            raise ConfigError(f"--input-shape {t.name}: the model's input has shape {shown}")
        out.append(TensorSpec(t.name, tuple(a if a is not None else b for a, b in zip(t.shape, g.shape, strict=True)),
                              t.dtype))
    return tuple(out)


# ----------------------------------------------------------------------------------------------- FP16 -> FP32


def fp16_to_fp32(model) -> dict:
    """Every FP16 tensor, value type, cast target and dtype attribute of ``model`` becomes FP32, in place.
    Returns what changed (empty counts when the model was FP32)."""
    from onnx import TensorProto, numpy_helper

    f16, f32 = TensorProto.FLOAT16, TensorProto.FLOAT
    tensors = 0
    for t in _all_tensors(model):
        if t.data_type == f16:
            arr = numpy_helper.to_array(t).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
            tensors += 1
    types = casts = 0
    for graph in all_graphs(model.graph):
        for vi in (*graph.input, *graph.output, *graph.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == f16:
                vi.type.tensor_type.elem_type = f32
                types += 1
        for node in graph.node:
            for a in node.attribute:
                if a.name in ("to", "dtype") and a.type == a.INT and a.i == f16:
                    a.i = f32
                    casts += 1
    return {"tensors": tensors, "types": types, "casts_or_dtypes": casts}


def _fp16_gap(path: Path, handle: ModelHandle) -> float | None:
    """Max abs difference between the FP16 file as given and its FP32 graph on a few reference rows."""
    from edgeport.runtimes.onnxruntime import OrtRunner

    try:
        feeds = handle.reference_inputs(FP16_CHECK_ROWS, 1)
        given, _ = OrtRunner.open(path).run(feeds)
        fp32, _ = OrtRunner.from_handle(handle).run(feeds)
        return float(max(np.abs(np.asarray(given[k], np.float64) - fp32[k]).max() for k in fp32))
    except Exception as e:  # noqa: BLE001 - a note only; the FP32 graph is what edgeport works from
        log.info("FP16 source %s not compared with its FP32 graph: %s", path.name, e)
        return None


# ----------------------------------------------------------------------------------------------- names


def rename_colliding(model) -> dict[str, str]:
    """Rename, in place, intermediate tensors and initializers whose names collide with a name ONNX
    Runtime's quantizers derive from another tensor (``x`` + ``_scale``, ...), and make node names unique and
    non-empty. Graph inputs and outputs keep their names. Returns old -> new tensor names."""
    graph = model.graph
    io = {v.name for v in (*graph.input, *graph.output)}
    names: set[str] = {i.name for i in graph.initializer} | io
    for g in all_graphs(graph):
        for n in g.node:
            names.update(x for x in (*n.input, *n.output) if x)
        names.update(i.name for i in g.initializer)
    bad: set[str] = set()
    for n in names:
        for s in ORT_DERIVED_SUFFIXES:
            if n + s in names:  # rename whichever of the pair is not a graph input/output
                bad.add(n + s if n + s not in io else n)
    bad -= io
    rename: dict[str, str] = {}
    taken = set(names)
    for k, old in enumerate(sorted(bad)):
        new = f"t{k}__renamed"
        while new in taken or any(new + s in taken for s in ORT_DERIVED_SUFFIXES):
            new += "_"
        taken.add(new)
        rename[old] = new
    seen_nodes: set[str] = set()
    for g in all_graphs(graph):
        for i in g.initializer:
            i.name = rename.get(i.name, i.name)
        for vi in g.value_info:
            vi.name = rename.get(vi.name, vi.name)
        for k, node in enumerate(g.node):
            node.input[:] = [rename.get(x, x) for x in node.input]
            node.output[:] = [rename.get(x, x) for x in node.output]
            if not node.name or node.name in seen_nodes:
                base = node.name or f"{node.op_type}_{k}"
                new = base
                while new in seen_nodes:
                    new += "_"
                node.name = new
            seen_nodes.add(node.name)
    return rename

"""Per-layer error of a quantized artifact against its float model (SPEC §4, ``--per-layer``).

For every op of the quantized graph whose output has a counterpart in the float graph, over the same
reference inputs: the SQNR (dB) of the quantized model's tensor against the float model's, its RMSE and
RMSE over the tensor's quantization scale, and ``loss_db``: how much SQNR the op loses against the worst
of its activation inputs. Errors accumulate along the graph, so every op after a damaging one reads a
poor SQNR too; ``loss_db`` names the op where the damage starts (inputs cleaner than 8 bits count as an
ideal 8-bit signal, ``INT8_SQNR_DB``), and rows are ranked by it (worst first), then by SQNR.

- TFLite (``tflite_per_layer``): any pair of ``.tflite`` files, both run in the LiteRT interpreter with
  ``experimental_preserve_all_tensors=True``; tensors are matched by name, through QUANTIZE / DEQUANTIZE,
  and by op position for what names do not match (the converter renames a graph output ``...:01``).
- ONNX (``onnx_per_layer``): ONNX Runtime's ``qdq_loss_debug`` (every intermediate tensor saved with
  ``modify_model_output_intermediate_tensors``, run with ``collect_activations``, QDQ pairs matched with
  ``create_activation_matching``, weights with ``create_weight_matching``) against the FP32 ONNX.

docs/per-layer.md says where TensorFlow's QuantizationDebugger fits and where it did not.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeport.errors import SourceError
from edgeport.sources.base import Feeds
from edgeport.validation.metrics import sqnr_db

TFLITE_TOOL = "ai-edge-litert Interpreter(experimental_preserve_all_tensors=True), float vs quantized .tflite"
ONNX_TOOL = "onnxruntime.quantization.qdq_loss_debug against the FP32 ONNX"
#: ops that only move data between float and INT8: not layers of their own
_CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "QuantizeLinear", "DequantizeLinear"})
#: SQNR of an ideal 8-bit quantizer on a full-range signal (6.02 b + 1.76 dB): an input cleaner than 8 bits
#: can carry (a float graph input, a float encoding) counts as this, so that the first quantized tensor is
#: not charged for the rounding every INT8 tensor pays
INT8_SQNR_DB = 6.02 * 8 + 1.76


@dataclass(frozen=True)
class LayerRow:
    """One op output of the quantized model against the float model's matching tensor."""

    tensor: str
    op: str
    layer: str
    quantized: bool  # INT8 tensor or a QDQ pair on it or its inputs, or INT8 weights (dynamic-range formats)
    sqnr_db: float
    rmse: float
    scale: float | None
    rmse_over_scale: float | None
    input_sqnr_db: float
    loss_db: float
    local_sqnr_db: float | None = None  # ONNX: the tensor's own QDQ step (pre vs post QDQ in the quantized model)
    weight_sqnr_db: float | None = None  # ONNX: the node's weights, float vs dequantized (worst when several)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PerLayerReport:
    artifact: str
    reference: str
    backend: str  # "tflite" | "onnx"
    tool: str
    input_rows: int
    rows: list[LayerRow]  # worst first
    unmatched: list[str] = field(default_factory=list)  # quantized-model tensors with no float counterpart

    def layers(self, *, quantized_only: bool = True) -> list[str]:
        """Layer names, worst first (each once, ranked by its worst op)."""
        return list(dict.fromkeys(r.layer for r in self.rows if r.quantized or not quantized_only))

    def to_dict(self) -> dict:
        return {
            "artifact": self.artifact,
            "reference": self.reference,
            "backend": self.backend,
            "tool": self.tool,
            "input_rows": self.input_rows,
            "ranking": "loss_db (SQNR lost against the op's worst input), then sqnr_db; worst first",
            "layers_worst_first": self.layers(),
            "rows": [r.to_dict() for r in self.rows],
            "unmatched": self.unmatched,
        }

    def to_json(self) -> str:
        from edgeport.fileio import strict_json

        return strict_json(self.to_dict())

    def table(self, limit: int | None = 15) -> str:
        """The printed table: the ``limit`` worst ops (all with None)."""
        from edgeport.reporting.table import columns

        header = ("layer", "op", "quant", "SQNR dB", "lost dB", "RMSE/scale", "tensor")
        shown = self.rows if limit is None else self.rows[:limit]
        rows = [(r.layer, r.op, "int8" if r.quantized else "float", f"{r.sqnr_db:.1f}", f"{r.loss_db:.1f}",
                 "-" if r.rmse_over_scale is None else f"{r.rmse_over_scale:.3g}", _short(r.tensor))
                for r in shown]
        title = (f"per-layer error of {Path(self.artifact).name} against {Path(self.reference).name} "
                 f"({self.input_rows} input rows; {self.tool})")
        out = [title, *columns(header, rows)]
        if limit is not None and len(self.rows) > limit:
            out.append(f"  ... {len(self.rows) - limit} more ops (JSON has all)")
        return "\n".join(out)


def per_layer(artifact: Path, reference: Path, feeds: Feeds, *, layers: Iterable[str] = ()) -> PerLayerReport:
    """The report for a quantized ``.tflite`` or ``.onnx`` against the float file of the same kind."""
    artifact, reference = Path(artifact), Path(reference)
    kinds = {artifact.suffix.lower(), reference.suffix.lower()}
    if kinds == {".tflite"}:
        return tflite_per_layer(artifact, reference, feeds, layers=layers)
    if kinds == {".onnx"}:
        return onnx_per_layer(artifact, reference, feeds, layers=layers)
    raise SourceError(f"--per-layer compares a quantized .tflite with a float .tflite, or a quantized .onnx with "
                      f"the FP32 .onnx; got {artifact.name} and {reference.name}")


# ----------------------------------------------------------------------------------------------- shared


@dataclass
class _Tensor:
    """A tensor of the quantized graph, the float values it is judged against, and the ops feeding it."""

    name: str
    op: str
    quant: np.ndarray
    ref: np.ndarray
    inputs: list[str]  # activation tensors (names in the same namespace) the producing op reads
    quantized: bool
    scale: float | None
    local_sqnr_db: float | None = None
    weight_sqnr_db: float | None = None


def _rank(tensors: list[_Tensor], layer_of, graph: dict[str, list[str]] | None = None) -> list[LayerRow]:
    """Figures per tensor, ``loss_db`` against the worst input, worst first. ``graph`` (tensor -> the
    activation inputs of the op writing it, for every op) lets an input without a counterpart of its own
    (a tensor the quantizer fused away) take the figure of the nearest ancestors that have one."""
    sqnr = {t.name: sqnr_db(t.ref, t.quant) for t in tensors}
    graph = graph or {}
    memo: dict[str, list[float]] = {}

    def figures(name: str, depth: int = 0) -> list[float]:
        if name in sqnr:
            return [sqnr[name]]
        if name not in memo:
            memo[name] = []  # cycles and long chains end here
            if depth < 64:
                memo[name] = [v for i in graph.get(name, []) for v in figures(i, depth + 1)]
        return memo[name]

    rows = []
    for t in tensors:
        if t.op in _CONVERSION_OPS:
            continue
        ins = [v for i in t.inputs for v in figures(i)]
        in_db = min([*ins, INT8_SQNR_DB])
        diff = np.asarray(t.ref, np.float64) - np.asarray(t.quant, np.float64)
        rmse = float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0
        rows.append(LayerRow(
            tensor=t.name, op=t.op, layer=layer_of(t.name), quantized=t.quantized, sqnr_db=sqnr[t.name], rmse=rmse,
            scale=t.scale, rmse_over_scale=(rmse / t.scale) if t.scale else None, input_sqnr_db=in_db,
            loss_db=max(0.0, in_db - sqnr[t.name]), local_sqnr_db=t.local_sqnr_db, weight_sqnr_db=t.weight_sqnr_db,
        ))
    rows.sort(key=lambda r: (-r.loss_db, r.sqnr_db))
    return rows


def layer_namer(layers: Iterable[str] = ()):
    """Tensor/node name -> layer name: the first of ``layers`` (Keras layer names, torch module paths) whose
    scope the name carries, else the name's own scope (``model/<layer>_1/op`` -> ``<layer>``), else the name."""
    known = [n for n in layers if n]
    rx = [(n, re.compile(rf"(^|/){re.escape(n)}(_\d+)?/")) for n in known]

    def name_of(t: str) -> str:
        first = t.split(";")[0]
        for n, r in rx:
            if r.search(first + "/"):
                return n
        parts = [p for p in first.split("/") if p]
        if len(parts) >= 3:
            return re.sub(r"_\d+$", "", parts[1])
        return first

    return name_of


def _short(name: str, width: int = 60) -> str:
    name = name.split(";")[0]
    return name if len(name) <= width else "..." + name[-(width - 3):]


def _rows_of(feeds: Feeds) -> int:
    return int(next(iter(feeds.values())).shape[0])


# ----------------------------------------------------------------------------------------------- TFLite


def _tflite_graph(data: bytes) -> tuple[list[tuple[str, list[int], list[int]]], set[int]]:
    """(opcode, inputs, outputs) per op in execution order, and the constant tensors (weights, biases)."""
    from ai_edge_litert import schema_py_generated as schema

    from edgeport.exporters.tflite_common import tflite_op_names

    codes = tflite_op_names(data)
    model = schema.Model.GetRootAs(bytearray(data), 0)
    sg = model.Subgraphs(0)
    ops = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        ops.append((codes[op.OpcodeIndex()], [int(op.Inputs(j)) for j in range(op.InputsLength())],
                    [int(op.Outputs(j)) for j in range(op.OutputsLength())]))
    const = set()
    for i in range(sg.TensorsLength()):
        b = sg.Tensors(i).Buffer()
        if b and model.Buffers(b).DataLength() > 0:
            const.add(i)
    return ops, const


def _tflite_tensors(data: bytes, feeds: Feeds) -> dict[int, np.ndarray]:
    """Every tensor's value (dequantized to float) after running all rows of ``feeds``."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeport.runtimes.litert import _to_input

    it = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    sigs = it.get_signature_list()
    if sigs:
        details = it.get_signature_runner(next(iter(sigs))).get_input_details()
    else:
        details = {d["name"]: d for d in it.get_input_details()}
    missing = [k for k in details if k not in feeds]
    if missing:
        raise SourceError(f"the reference inputs lack {missing} needed by the TFLite model; they hold {sorted(feeds)}")
    n = _rows_of(feeds)
    signature = [int(d["shape_signature"][0]) if len(d["shape_signature"]) else 1 for d in it.get_input_details()]
    fixed = next((s for s in signature if s > 0), None)
    step = n if fixed is None or fixed == -1 else fixed
    parts: dict[int, list[np.ndarray]] = {}
    for start in range(0, n, step):
        chunk = {k: np.asarray(feeds[k][start:start + step]) for k in details}
        m = _rows_of(chunk)
        if m < step:  # a fixed batch: pad with the last row, keep the real rows only
            chunk = {k: np.concatenate([v, np.repeat(v[-1:], step - m, axis=0)]) for k, v in chunk.items()}
        for k, d in details.items():
            it.resize_tensor_input(d["index"], list(chunk[k].shape), strict=False)
        it.allocate_tensors()
        for k, d in details.items():
            it.set_tensor(d["index"], _to_input(chunk[k], it.get_input_details()[_pos(it, d["index"])]))
        it.invoke()
        for d in it.get_tensor_details():
            try:
                v = it.get_tensor(d["index"])
            except ValueError:  # a tensor with no data (e.g. an optional bias slot)
                continue
            scale, zero = d["quantization"]
            v = ((v.astype(np.float32) - zero) * scale).astype(np.float32) if np.issubdtype(v.dtype, np.integer) \
                and scale else np.asarray(v, np.float32)
            if v.ndim and v.shape[0] == step and step != m:
                v = v[:m]
            parts.setdefault(int(d["index"]), []).append(np.array(v, copy=True))
    return {i: (np.concatenate(p) if len(p) > 1 and all(x.ndim for x in p) else p[0]) for i, p in parts.items()}


def _pos(it, index: int) -> int:
    return next(k for k, d in enumerate(it.get_input_details()) if d["index"] == index)


def tflite_per_layer(quantized: Path | bytes, float_model: Path | bytes, feeds: Feeds, *,
                     layers: Iterable[str] = ()) -> PerLayerReport:
    """Per-op error of a quantized ``.tflite`` against the float ``.tflite`` of the same model on ``feeds``."""
    from ai_edge_litert.interpreter import Interpreter

    qdata = Path(quantized).read_bytes() if isinstance(quantized, (str, Path)) else bytes(quantized)
    fdata = Path(float_model).read_bytes() if isinstance(float_model, (str, Path)) else bytes(float_model)
    qops, qconst = _tflite_graph(qdata)
    fops, fconst = _tflite_graph(fdata)
    qdet = {int(d["index"]): d for d in Interpreter(model_content=qdata).get_tensor_details()}
    fdet = {int(d["index"]): d for d in Interpreter(model_content=fdata).get_tensor_details()}
    qvals, fvals = _tflite_tensors(qdata, feeds), _tflite_tensors(fdata, feeds)
    by_name = {d["name"]: i for i, d in fdet.items() if i not in fconst}

    # quantized tensor -> float tensor: by name, through QUANTIZE/DEQUANTIZE, then by op position
    match: dict[int, int] = {}
    for code, ins, outs in qops:
        for t in outs:
            if qdet[t]["name"] in by_name:
                match[t] = by_name[qdet[t]["name"]]
    for code, ins, outs in qops:  # graph inputs are tensors no op writes
        for t in ins:
            if t >= 0 and t not in qconst and t not in match and qdet[t]["name"] in by_name:
                match[t] = by_name[qdet[t]["name"]]
    f_compute = [outs for code, _, outs in fops if code not in _CONVERSION_OPS]
    q_compute = [(code, outs) for code, _, outs in qops if code not in _CONVERSION_OPS]
    positional = len(f_compute) == len(q_compute)
    for k, (code, outs) in enumerate(q_compute):
        for j, t in enumerate(outs):
            if t not in match and positional and j < len(f_compute[k]):
                match[t] = f_compute[k][j]
    for code, ins, outs in qops:  # conversion ops carry their input's counterpart (in execution order)
        if code in _CONVERSION_OPS and ins and ins[0] in match:
            match.setdefault(outs[0], match[ins[0]])
    for code, ins, outs in reversed(qops):  # ... and a DEQUANTIZE output names its int8 input ("...:01" -> ":0")
        if code == "DEQUANTIZE" and outs[0] in match and ins[0] not in match:
            match[ins[0]] = match[outs[0]]

    tensors, unmatched = [], []
    for code, ins, outs in qops:
        for t in outs:
            f = match.get(t)
            if f is None or t not in qvals or f not in fvals or qvals[t].shape != fvals[f].shape:
                unmatched.append(qdet[t]["name"])
                continue
            scale = float(qdet[t]["quantization"][0]) or None
            int_weights = any(np.issubdtype(qdet[i]["dtype"], np.integer) for i in ins if i in qconst)
            tensors.append(_Tensor(
                name=qdet[t]["name"], op=code, quant=qvals[t], ref=fvals[f],
                inputs=[qdet[i]["name"] for i in ins if i >= 0 and i not in qconst],
                quantized=np.issubdtype(qdet[t]["dtype"], np.integer) or int_weights, scale=scale,
            ))
    # graph inputs (float I/O): exact, the reference for the first ops
    for t, f in match.items():
        if not any(t in outs for _, _, outs in qops) and t in qvals and f in fvals:
            tensors.insert(0, _Tensor(qdet[t]["name"], "INPUT", qvals[t], fvals[f], [], False, None))
    known = list(layers) or []
    graph = {qdet[t]["name"]: [qdet[i]["name"] for i in ins if i >= 0 and i not in qconst]
             for _, ins, outs in qops for t in outs}
    report = PerLayerReport(
        artifact=str(quantized) if isinstance(quantized, (str, Path)) else "<quantized bytes>",
        reference=str(float_model) if isinstance(float_model, (str, Path)) else "<float bytes>",
        backend="tflite", tool=TFLITE_TOOL, input_rows=_rows_of(feeds),
        rows=[r for r in _rank(tensors, layer_namer(known), graph) if r.op != "INPUT"], unmatched=unmatched,
    )
    return report


DEBUGGER_TOOL = "tf.lite.experimental.QuantizationDebugger (each op against its float op on the same dequantized inputs)"


def tflite_debugger_report(handle, samples: np.ndarray, feeds: Feeds, *, per_tensor: bool = False,
                           float_layers: tuple[str, ...] = ()) -> PerLayerReport:
    """TensorFlow's QuantizationDebugger on the Keras route (it needs the converter and the representative
    dataset, which only that route has): each quantized op's output against the float op fed the same
    dequantized inputs, so each figure is the op's own error, not the error accumulated in front of it
    (``input_sqnr_db`` is the ideal 8-bit figure and ``loss_db`` what the op loses below it).
    ``float_layers`` stay float as in the artifact (``tflite_keras.denylist_nodes``)."""
    import tensorflow as tf

    from edgeport.exporters import tflite_keras as K

    conv = K.ptq_converter(handle, samples, per_tensor=per_tensor)
    nodes = K.denylist_nodes(K.convert_float(handle), tuple(float_layers))
    name = handle.input_names[0]

    def data():
        for row in np.asarray(feeds[name], np.float32):
            yield [row[None]]

    def deq(q, scale, zero):
        return (np.asarray(q, np.float64) - zero) * scale

    metrics = {  # sums per example: their means over examples give the aggregate SQNR and RMSE exactly
        "signal": lambda f, q, s, z: float(np.sum(np.asarray(f, np.float64) ** 2)),
        "noise": lambda f, q, s, z: float(np.sum((np.asarray(f, np.float64) - deq(q, s, z)) ** 2)),
        "elements": lambda f, q, s, z: float(np.size(f)),
        "scale": lambda f, q, s, z: float(s),
    }
    opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes, layer_direct_compare_metrics=metrics)
    from edgeport.exporters import _torch_compat

    with _torch_compat.quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=data, debug_options=opts)
        debugger.run()
    namer = layer_namer([layer.name for layer in getattr(handle.model, "layers", [])])
    fdata = K.convert_float(handle)
    fops, _ = _tflite_graph(fdata)
    from ai_edge_litert.interpreter import Interpreter

    fnames = {int(d["index"]): d["name"] for d in Interpreter(model_content=fdata).get_tensor_details()}
    op_of = {fnames[t]: code for code, _, outs in fops for t in outs}
    rows = []
    for key, st in debugger.layer_statistics.items():
        # "NumericVerify/<tensor><digit>:<index>": the debugger's own naming, undone as its code does
        tensor = re.sub(r"^NumericVerify/", "", key.rsplit(":", 1)[0])
        tensor = tensor[:-1] if tensor and tensor[-1].isdigit() and tensor[:-1] in op_of else tensor
        sqnr = sqnr_from_sums(st["signal"], st["noise"])
        rmse = float(np.sqrt(st["noise"] / max(st["elements"], 1.0)))
        rows.append(LayerRow(tensor=tensor, op=op_of.get(tensor, "?"), layer=namer(tensor), quantized=True, sqnr_db=sqnr, rmse=rmse,
                             scale=float(st["scale"]), rmse_over_scale=rmse / st["scale"] if st["scale"] else None,
                             input_sqnr_db=INT8_SQNR_DB, loss_db=max(0.0, INT8_SQNR_DB - sqnr)))
    rows.sort(key=lambda r: (-r.loss_db, r.sqnr_db))
    return PerLayerReport(artifact=f"{handle.name} (converter PTQ, debug model)", reference=f"{handle.name} (float ops)",
                          backend="tflite", tool=DEBUGGER_TOOL, input_rows=_rows_of(feeds), rows=rows)


def sqnr_from_sums(signal: float, noise: float) -> float:
    """``sqnr_db`` from sums of squares (capped the same way)."""
    from edgeport.validation.metrics import SQNR_CAP_DB

    if noise <= 1e-12:
        return SQNR_CAP_DB
    return float(min(SQNR_CAP_DB, 10.0 * np.log10(max(signal, 1e-12) / noise)))


# ----------------------------------------------------------------------------------------------- ONNX


def onnx_per_layer(quantized: Path, float_model: Path, feeds: Feeds, *, layers: Iterable[str] = ()) -> PerLayerReport:
    """Per-node error of a QDQ (static) or dynamic INT8 ``.onnx`` against the FP32 ``.onnx`` on ``feeds``."""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    quantized, float_model = Path(quantized), Path(float_model)
    fmodel = onnx.load_model(str(float_model))
    qmodel = onnx.load_model(str(quantized))
    with tempfile.TemporaryDirectory(prefix="edgeport-per-layer-") as tmp:
        acts = {}
        for tag, path in (("float", float_model), ("quant", quantized)):
            aug = Path(tmp) / f"{tag}_aug.onnx"
            dbg.modify_model_output_intermediate_tensors(str(path), str(aug))
            acts[tag] = dbg.collect_activations(str(aug), _OneBatch(feeds, [i.name for i in fmodel.graph.input]))
        weights = dbg.create_weight_matching(str(float_model), str(quantized))
    fa = {k: np.concatenate([np.ravel(v) for v in vs]) for k, vs in acts["float"].items()}
    qa = {k: np.concatenate([np.ravel(v) for v in vs]) for k, vs in acts["quant"].items()}
    matched = dbg.create_activation_matching(acts["quant"], acts["float"])
    scales = _qdq_scales(qmodel)
    wsqnr = {k: sqnr_db(v["float"], v["dequantized"]) for k, v in weights.items()}
    inits = {i.name for i in fmodel.graph.initializer}
    # weights ONNX Runtime quantized (static and dynamic alike): "<w>_quantized", or "<w>__T_<node>_quantized"
    # for the Gemm weights edgeport's dynamic INT8 transposes first (exporters/onnx.gemm_to_matmul)
    qinits = [i.name for i in qmodel.graph.initializer if i.name.endswith("_quantized")]

    def int8_weights(node) -> bool:
        return any(q == f"{i}_quantized" or q.startswith(f"{i}__T_") for i in node.input if i in inits for q in qinits)
    for i, x in enumerate(fmodel.graph.input):  # graph inputs: float values are the feeds
        fa.setdefault(x.name, np.ravel(np.asarray(feeds[x.name], np.float64)))

    tensors, unmatched = [], []
    for x in fmodel.graph.input:
        post = matched.get(x.name, {}).get("post_qdq")
        q = np.concatenate([np.ravel(v) for v in post]) if post else fa[x.name]
        tensors.append(_Tensor(x.name, "INPUT", q, fa[x.name], [], x.name in scales, scales.get(x.name)))
    for node in fmodel.graph.node:
        if node.op_type == "Constant":
            continue
        for t in node.output:
            if t not in fa:
                continue
            m = matched.get(t)
            if m and m.get("post_qdq"):
                q = np.concatenate([np.ravel(v) for v in m["post_qdq"]])
                pre = np.concatenate([np.ravel(v) for v in m["pre_qdq"]]) if m.get("pre_qdq") else None
                local = sqnr_db(pre, q) if pre is not None and pre.shape == q.shape else None
            elif t in qa:
                q, local = qa[t], None
            else:
                unmatched.append(t)
                continue
            if q.shape != fa[t].shape:
                unmatched.append(t)
                continue
            w = [wsqnr[i] for i in node.input if i in wsqnr]
            tensors.append(_Tensor(
                name=t, op=node.op_type, quant=q, ref=fa[t],
                inputs=[i for i in node.input if i and i not in inits],
                quantized=t in scales or any(i in scales for i in node.input if i not in inits) or int8_weights(node),
                scale=scales.get(t), local_sqnr_db=local, weight_sqnr_db=min(w) if w else None,
            ))
    namer = _onnx_layer_namer(fmodel, layers)
    graph = {t: [i for i in n.input if i and i not in inits] for n in fmodel.graph.node for t in n.output}
    return PerLayerReport(
        artifact=str(quantized), reference=str(float_model), backend="onnx", tool=ONNX_TOOL,
        input_rows=_rows_of(feeds), rows=[r for r in _rank(tensors, namer, graph) if r.op != "INPUT"],
        unmatched=unmatched,
    )


class _OneBatch:
    """A calibration-style reader that yields all reference rows at once (the graphs have a dynamic batch)."""

    def __init__(self, feeds: Feeds, names: list[str]):
        missing = [n for n in names if n not in feeds]
        if missing:
            raise SourceError(f"the reference inputs lack {missing} needed by the ONNX model; they hold {sorted(feeds)}")
        self._rows = [{n: np.asarray(feeds[n]) for n in names}]

    def __iter__(self):
        return iter(self._rows)

    def get_next(self):  # CalibrationDataReader protocol
        return self._rows.pop(0) if self._rows else None


def _qdq_scales(model) -> dict[str, float]:
    """Activation tensor -> scale of the QuantizeLinear applied to it (the largest, per-channel scales)."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and len(n.input) > 1 and n.input[0] not in inits and n.input[1] in inits:
            out[n.input[0]] = float(np.max(inits[n.input[1]]))
    return out


def _onnx_layer_namer(model, layers: Iterable[str]):
    """Tensor -> layer: a torch module path (the dynamo exporter's scope metadata, ``model.`` wrapper dropped),
    else the Keras scope / given layer names (``layer_namer``)."""
    from edgeport.exporters import _torch_compat

    scope_of: dict[str, str] = {}
    prefix = _torch_compat.WRAPPED_ATTR + "."
    for n in model.graph.node:
        scopes = _torch_compat.node_scopes(n)
        deepest = max(scopes, key=len) if scopes else ""
        if deepest.startswith(prefix):  # a submodule (the wrapper's own ops are named by their node)
            for t in n.output:
                scope_of[t] = deepest[len(prefix):]
    by_name = layer_namer(layers)
    node_of = {t: n.name for n in model.graph.node for t in n.output}
    return lambda t: scope_of.get(t) or by_name(node_of.get(t, t))

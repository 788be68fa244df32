"""Keras 3 -> ONNX FP32 with tf2onnx, and the mapping from Keras layer names to ONNX nodes (which layers
stay float is the model family's answer, ``edgeport.families``).

Route chosen by measurement (docs/dev/onnx-keras.md): ``tf2onnx.convert.from_function`` on a
``tf.function`` that returns a dict keyed by the handle's output names. Keras's own
``model.export(format="onnx")`` calls tf2onnx too, but at opset 15 and names its output ``Identity:0``, for
the same numbers (max diff ~1e-6 both) in as much time or more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from edgeport.errors import ConversionError, MissingDependencyError
from edgeport.exporters import _torch_compat
from edgeport.exporters.base import error_line
from edgeport.sources.base import ModelHandle

#: tf2onnx 1.17 handles opsets up to 18; edgeport's default (18) is used when it can.
MAX_OPSET = 18
#: name of the dynamic batch dimension in the written graph
BATCH_DIM = "batch"


def _imports():
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as e:
        pkg = "tf2onnx" if "tf2onnx" in str(e) else "tensorflow-cpu"
        raise MissingDependencyError(pkg, "ONNX export of Keras models", "tf") from None
    return tf, tf2onnx


def keras_to_onnx_proto(handle: ModelHandle, *, opset: int):
    """The FP32 ``onnx.ModelProto`` of ``handle.model`` (a Keras 3 model): inputs and outputs named and
    ordered as the handle's TensorSpecs, batch dimension dynamic."""
    tf, tf2onnx = _imports()
    model = handle.model
    specs = [tf.TensorSpec(t.shape, tf.as_dtype(t.dtype), name=t.name) for t in handle.inputs]
    out_names = list(handle.output_names)

    @tf.function(input_signature=specs)
    def serve(*xs):
        y = model(xs[0] if len(xs) == 1 else list(xs), training=False)
        if isinstance(y, dict):
            y = [y[k] for k in getattr(model, "output_names", list(y))]
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        if len(ys) != len(out_names):
            raise ConversionError(f"the Keras model returns {len(ys)} outputs; the handle names {len(out_names)}")
        return {n: tf.identity(v) for n, v in zip(out_names, ys, strict=True)}

    try:
        with _torch_compat.quiet():
            proto, _ = tf2onnx.convert.from_function(serve, input_signature=specs, opset=min(opset, MAX_OPSET))
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"tf2onnx could not convert the Keras model: {type(e).__name__}: {error_line(e)}") from e
    _fix_io(proto, handle)
    return proto


def _fix_io(proto, handle: ModelHandle) -> None:
    """Outputs in the handle's order (a dict output is flattened in key order), names exactly the handle's
    (tf2onnx may keep a ``:0``), the batch dimension named."""
    graph = proto.graph
    want_in, want_out = list(handle.input_names), list(handle.output_names)
    _rename(graph, {i.name: _base(i.name) for i in graph.input if i.name != _base(i.name)})
    _rename(graph, {o.name: _base(o.name) for o in graph.output if o.name != _base(o.name)})
    by_name = {o.name: o for o in graph.output}
    if set(by_name) != set(want_out) or [i.name for i in graph.input] != want_in:
        raise ConversionError(f"tf2onnx wrote inputs {[i.name for i in graph.input]} / outputs {sorted(by_name)}; "
                              f"expected {want_in} / {want_out}")
    ordered = [by_name[n] for n in want_out]
    keep = []
    for o in ordered:
        c = type(o)()
        c.CopyFrom(o)
        keep.append(c)
    del graph.output[:]
    graph.output.extend(keep)
    for vi in list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


def _base(name: str) -> str:
    return name.removesuffix(":0")


def _rename(graph, mapping: dict[str, str]) -> None:
    if not mapping:
        return
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name in mapping:
            vi.name = mapping[vi.name]
    for n in graph.node:
        for k, t in enumerate(n.input):
            if t in mapping:
                n.input[k] = mapping[t]
        for k, t in enumerate(n.output):
            if t in mapping:
                n.output[k] = mapping[t]


def layer_regex(layer: str) -> str:
    """Node-name regex for the ops of a Keras layer: tf2onnx keeps the TF scope ``<model>_1/<layer>_1/op``."""
    return rf"(^|/){re.escape(layer)}(_\d+)?/"


def layer_nodes(model, layers: Iterable[str]) -> list[str]:
    """Names of the ONNX nodes made from any of the Keras ``layers``: by the node's TF name scope, or, for the
    nodes tf2onnx renames when it fuses (``Conv__332`` = stem conv + BatchNorm, no scope), by the scope of the
    weights it reads (``.../stem_conv_1/convolution/merged_input:0``). Scoped nodes are matched by their own
    name only: tf2onnx shares constants (e.g. ReLU6's clip bounds) under the scope of their first user."""
    rx = [re.compile(layer_regex(n)) for n in layers if n]
    if not rx:
        return []
    inits = {i.name for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        names = [n.name] if "/" in n.name else [n.name] + [i for i in n.input if i in inits]
        if any(r.search(t) for t in names for r in rx):
            out.append(n.name)
    return out

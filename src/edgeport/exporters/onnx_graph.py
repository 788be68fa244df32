"""Edits of an ONNX graph the exporters make on the way to a precision: the input-side chain of nodes that
must stay FP32, shared initializers given one copy per consumer, graph outputs cast back to their type, FP16
round-trip casts folded, mixed-type inputs cast, Gemm rewritten as MatMul + Add for the dynamic quantizer.

Pure ``onnx.ModelProto`` work: no exporter, runtime or family is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Trigonometric ops: their argument is the raw input scaled, which FP16 rounds coarsely (0.125 deg at 180).
TRIG_OPS = ("Sin", "Cos", "Tan", "Atan", "Asin", "Acos")


def copy_model(model):
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


def float_type_of(value_info) -> int:
    return value_info.type.tensor_type.elem_type


def input_chain_nodes(model, op_types: Iterable[str] = TRIG_OPS) -> list[str]:
    """Nodes of ``op_types`` (trig by default) fed by a graph input, and every node between the graph inputs
    and them (the input encoding)."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    from_input = {i.name for i in graph.input}
    # tensors that depend on a graph input
    dep_nodes = set()
    for n in graph.node:  # nodes are topologically sorted in a valid ONNX graph
        if any(i in from_input for i in n.input):
            dep_nodes.add(n.name)
            from_input.update(n.output)
    keep: set[str] = set()
    op_types = set(op_types)
    stack = [n for n in graph.node if n.op_type in op_types and n.name in dep_nodes]
    while stack:
        n = stack.pop()
        if n.name in keep:
            continue
        keep.add(n.name)
        for i in n.input:
            p = producer.get(i)
            if p is not None and p.name in dep_nodes:
                stack.append(p)
    return [n.name for n in graph.node if n.name in keep]


def unshare_initializers(model) -> int:
    """Give every consumer of a shared initializer its own copy (the exporters de-duplicate identical
    initializers, and the FP16 converter then casts one copy for an FP32 node and an FP16 node alike).
    Returns the number of copies made."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    seen: dict[str, int] = {}
    copies = 0
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name not in inits:
                continue
            seen[name] = seen.get(name, 0) + 1
            if seen[name] == 1:
                continue
            new_name = f"{name}__copy{seen[name] - 1}"
            t = numpy_helper.from_array(numpy_helper.to_array(inits[name]), new_name)
            graph.initializer.append(t)
            node.input[k] = new_name
            copies += 1
    return copies


def force_output_types(model, elem_type: int) -> list[str]:
    """Cast graph outputs to ``elem_type`` where the converter left another float type (onnxconverter-common
    returns FP16 outputs when the producing node is block-listed, despite keep_io_types)."""
    from onnx import TensorProto, helper

    graph = model.graph
    fixed = []
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    for out in graph.output:
        cur = out.type.tensor_type.elem_type
        if cur == elem_type or cur not in floats:
            continue
        inner = f"{out.name}__pre_cast"
        for node in graph.node:
            for k, o in enumerate(node.output):
                if o == out.name:
                    node.output[k] = inner
            for k, i in enumerate(node.input):
                if i == out.name:
                    node.input[k] = inner
        graph.node.append(helper.make_node("Cast", [inner], [out.name], to=elem_type, name=f"{out.name}__cast"))
        out.type.tensor_type.elem_type = elem_type
        fixed.append(out.name)
    return fixed


def fold_cast_roundtrips(model) -> int:
    """Remove ``Cast(to=FP16) -> Cast(to=FP32)`` pairs between two FP32 nodes. onnxconverter-common 1.16 casts
    the output of every block-listed node to FP16 and back even when its consumer is block-listed too, which
    rounds e.g. the angle fed to Sin/Cos and defeats the block list. Returns the pairs removed."""
    from onnx import TensorProto, helper

    graph = model.graph
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}

    def cast_to(n) -> int | None:
        if n.op_type != "Cast":
            return None
        return next((helper.get_attribute_value(a) for a in n.attribute if a.name == "to"), None)

    removed: set[int] = set()
    rename: dict[str, str] = {}
    count = 0
    for a in graph.node:
        if cast_to(a) != TensorProto.FLOAT16:
            continue
        users = consumers.get(a.output[0], [])
        back = [u for u in users if cast_to(u) == TensorProto.FLOAT]
        for u in back:
            if u.output[0] in outputs:  # keep the graph output's Cast, fed straight from the FP32 tensor
                u.input[0] = a.input[0]
                count += 1
                continue
            rename[u.output[0]] = a.input[0]
            removed.add(id(u))
            count += 1
        users = [u for u in users if a.output[0] in u.input]
        if a.output[0] not in outputs and all(id(u) in removed for u in users):
            removed.add(id(a))
    if not count:
        return 0
    keep = [n for n in graph.node if id(n) not in removed]
    for n in keep:
        for k, i in enumerate(n.input):
            while i in rename:
                i = rename[i]
            n.input[k] = i
    del graph.node[:]
    graph.node.extend(keep)
    return count


_MIXED_TYPE_OPS = ("Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Conv")


def cast_mixed_inputs(model) -> int:
    """Insert ``Cast(to=FLOAT16)`` in front of FLOAT inputs of arithmetic nodes whose other inputs are FLOAT16 (the
    converter misses the boundary when a kept-FP32 value is also a graph output: transformers' Swin pooled
    embedding feeding the species head's Gemm)."""
    from onnx import TensorProto, helper

    g = model.graph
    types = {v.name: float_type_of(v) for v in (*g.input, *g.value_info, *g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    new_nodes, count = [], 0
    for node in g.node:
        ins = [types.get(i) for i in node.input]
        if node.op_type in _MIXED_TYPE_OPS and TensorProto.FLOAT16 in ins and TensorProto.FLOAT in ins:
            for k, t in enumerate(ins):
                if t == TensorProto.FLOAT:
                    cast_out = f"{node.input[k]}__fp16_for_{node.name or count}"
                    new_nodes.append(helper.make_node("Cast", [node.input[k]], [cast_out], to=TensorProto.FLOAT16,
                                                      name=f"{cast_out}_Cast"))
                    node.input[k] = cast_out
                    count += 1
        new_nodes.append(node)
    if count:
        del g.node[:]
        g.node.extend(new_nodes)
    return count


def retarget_float_casts(model, blocked: set[str]) -> int:
    """``Cast(to=FLOAT)`` nodes outside the block list whose output the converter typed FLOAT16: make them cast to
    FLOAT16. onnxconverter-common leaves them (a TorchScript export of transformers' Swin casts its shifted-window
    attention mask to float), and ONNX Runtime then refuses the file: "Type (tensor(float16)) of output arg ...
    does not match expected type (tensor(float))"."""
    from onnx import TensorProto, helper

    fp16_values = {v.name for v in model.graph.value_info if float_type_of(v) == TensorProto.FLOAT16}
    count = 0
    for node in model.graph.node:
        if node.op_type != "Cast" or node.name in blocked or node.output[0] not in fp16_values:
            continue
        for a in node.attribute:
            if a.name == "to" and helper.get_attribute_value(a) == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
                count += 1
    return count


def gemm_to_matmul(model):
    """Rewrite ``Gemm(A, B, C)`` (alpha = beta = 1, transA = 0) as ``MatMul + Add``: ONNX Runtime's dynamic
    quantizer handles MatMul but leaves Gemm in FP32, and the dynamo exporter emits Gemm for nn.Linear."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0):
            new_nodes.append(node)
            continue
        a, b = node.input[0], node.input[1]
        if attrs.get("transB", 0):
            if b not in inits:
                new_nodes.append(node)
                continue
            w = numpy_helper.to_array(inits[b]).T.copy()
            b_t = f"{b}__T_{node.name}"
            graph.initializer.append(numpy_helper.from_array(w, b_t))
            b = b_t
        mm_out = f"{node.output[0]}__mm" if len(node.input) > 2 and node.input[2] else node.output[0]
        made = [helper.make_node("MatMul", [a, b], [mm_out], name=f"{node.name}_MatMul")]
        if mm_out != node.output[0]:
            made.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
        for m in made:  # keep the module-path metadata so keep_float still finds these nodes
            m.metadata_props.extend(node.metadata_props)
        new_nodes.extend(made)
    del graph.node[:]
    graph.node.extend(new_nodes)
    _drop_unused_initializers(graph)
    return model


def _drop_unused_initializers(graph) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)

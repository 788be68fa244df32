"""Small ONNX models as another tool writes them (built with ``onnx.helper``), and one shared export of one.

``third_party_model``: two inputs ``a`` (8 features) and ``b`` (4), two outputs (``logits``: 5, and ``probs``:
a sigmoid head of 3), a fixed batch of 1 or a symbolic one, weights in an external data file or inline,
FP32 or FP16, any opset, and optionally an intermediate tensor named like a name ONNX Runtime's quantizers
derive (``h`` and ``h_scale``), which breaks their output files unless renamed first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: the suffix of the colliding tensor (``h`` + ``_scale``: both static and dynamic quantization break on it)
COLLIDING_SUFFIX = "_scale"


def third_party_model(path: Path, *, opset: int = 17, batch: int | None = 1, seed: int = 0, fp16: bool = False,
                      external: bool = True, collide: bool = False) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    dtype = np.float16 if fp16 else np.float32
    weights = {
        "W1": rng.normal(size=(8, 16)) * 0.5, "b1": rng.normal(size=(16,)) * 0.1, "W2": rng.normal(size=(4, 16)) * 0.5,
        "W3": rng.normal(size=(16, 5)) * 0.5, "W4": rng.normal(size=(16, 3)) * 0.5,
    }
    inits = [numpy_helper.from_array(w.astype(dtype), name) for name, w in weights.items()]
    h = "h" if collide else "h2"  # collide: "h" feeds a MatMul, and the next tensor is named "h_scale"
    g2 = h + COLLIDING_SUFFIX if collide else "g2"
    nodes = [
        helper.make_node("MatMul", ["a", "W1"], ["h1"], name="dense_a"),
        helper.make_node("Add", ["h1", "b1"], [h], name="bias_a"),
        helper.make_node("MatMul", ["b", "W2"], ["g1"], name="dense_b"),
        helper.make_node("Relu", ["g1"], [g2], name="relu_b"),
        helper.make_node("Mul", [h, g2], ["m"], name="gate"),
        helper.make_node("Tanh", ["m"], ["t"], name="tanh"),
        helper.make_node("MatMul", ["t", "W3"], ["logits"], name="head_logits"),
        helper.make_node("MatMul", ["t", "W4"], ["z"], name="head_probs"),
        helper.make_node("Sigmoid", ["z"], ["probs"], name="sigmoid"),
    ]
    if collide:  # h also feeds a MatMul of its own, so the quantizers derive h_scale for it
        weights_extra = numpy_helper.from_array((rng.normal(size=(16, 5)) * 0.5).astype(dtype), "W5")
        inits.append(weights_extra)
        nodes[6:7] = [helper.make_node("MatMul", ["t", "W3"], ["l1"], name="head_logits"),
                      helper.make_node("MatMul", [h, "W5"], ["l2"], name="skip"),
                      helper.make_node("Add", ["l1", "l2"], ["logits"], name="head_sum")]
    d = batch if batch else "batch"
    graph = helper.make_graph(
        nodes, "made_elsewhere",
        [helper.make_tensor_value_info("a", elem, [d, 8]), helper.make_tensor_value_info("b", elem, [d, 4])],
        [helper.make_tensor_value_info("logits", elem, [d, 5]), helper.make_tensor_value_info("probs", elem, [d, 3])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="another-tool")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def feeds(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` rows of N(0, 1) inputs for ``third_party_model``."""
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal((n, 8)).astype(np.float32), "b": rng.standard_normal((n, 4)).astype(np.float32)}


def ort_outputs(path: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The file run in plain ONNX Runtime, one row at a time (it may have a fixed batch of 1)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    n = int(next(iter(inputs.values())).shape[0])
    rows = [sess.run(names, {k: v[i : i + 1] for k, v in inputs.items()}) for i in range(n)]
    return {name: np.concatenate([r[j] for r in rows]).astype(np.float32) for j, name in enumerate(names)}


def export_all(tmp_path_factory):
    """``edgeport export third_party.onnx --formats all --calibration-inputs cal.npz`` once per test run:
    (source path, export folder, exit code)."""
    from edgeport.cli.main import main
    from tests._support.shared import shared_dir

    with shared_dir(tmp_path_factory, "onnx_third_party_export") as (d, built):
        src = d / "src" / "third_party.onnx"
        out = d / "exports"
        code_file = d / "exit_code"
        if not built:
            third_party_model(src)
            np.savez(d / "cal.npz", **feeds(128, 5))
            code = main(["export", str(src), "--formats", "all", "--calibration-inputs", str(d / "cal.npz"),
                         "--outdir", str(out)])
            code_file.write_text(str(code))
    return src, out, int(code_file.read_text())

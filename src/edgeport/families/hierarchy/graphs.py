"""Small ONNX graphs built with ``onnx.helper``: a disease head, the fused head model, the OOD detector.

They are FP32 sources for the ONNX exporter (``handle.framework == "onnx"``), which makes every precision of
them exactly as it does for any other model.
"""

from __future__ import annotations

import numpy as np

#: Value of a padded slot of the fused model's ``disease_logits``: far below any real logit, so a padded slot
#: never wins an argmax and gets probability 0 in a softmax. -1e4 because onnxconverter-common clips FP16
#: constants to +-1e4 (a larger value would differ between the FP32 and FP16 files).
PAD_LOGIT = -10000.0
IR_VERSION = 10


def _model(nodes, inputs, outputs, inits, opset: int, name: str):
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))], producer_name="edgeport")
    m.ir_version = IR_VERSION
    return m


def head_graph(weight: np.ndarray, bias: np.ndarray, *, opset: int = 18):
    """``embedding (N, D) -> disease_logits (N, K)`` for ``nn.Linear`` weights ``(K, D)`` and bias ``(K,)``."""
    from onnx import TensorProto, helper, numpy_helper

    k, d = weight.shape
    inits = [numpy_helper.from_array(np.ascontiguousarray(weight.T, np.float32), "W"),
             numpy_helper.from_array(np.asarray(bias, np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["embedding", "W"], ["mm"], name="head_MatMul"),
             helper.make_node("Add", ["mm", "b"], ["disease_logits"], name="head_Add")]
    return _model(nodes, [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d])],
                  [helper.make_tensor_value_info("disease_logits", TensorProto.FLOAT, ["batch", k])], inits, opset,
                  "disease_head")


def fused_graph(heads: list[tuple[np.ndarray, np.ndarray]], *, opset: int = 18):
    """``embedding (N, D), species_index (N,) int64 -> disease_logits (N, Kmax), valid_count (N,) int64``.

    All heads' columns in one ``MatMul`` (``D x sum K``), then each row gathers its species' columns; slots past
    the species' disease count are ``PAD_LOGIT``.
    """
    from onnx import TensorProto, helper, numpy_helper

    d = heads[0][0].shape[1]
    counts = np.array([w.shape[0] for w, _ in heads], np.int64)
    kmax, offsets = int(counts.max()), np.concatenate([[0], np.cumsum(counts)[:-1]])
    w_all = np.concatenate([w for w, _ in heads], axis=0).T.astype(np.float32)
    b_all = np.concatenate([b for _, b in heads]).astype(np.float32)
    idx = np.zeros((len(heads), kmax), np.int64)
    valid = np.zeros((len(heads), kmax), bool)
    for s, (o, c) in enumerate(zip(offsets, counts, strict=True)):
        idx[s, :c] = o + np.arange(c)
        idx[s, c:] = o  # any column of the species; masked below
        valid[s, :c] = True
    inits = [numpy_helper.from_array(np.ascontiguousarray(w_all), "W_all"), numpy_helper.from_array(b_all, "b_all"),
             numpy_helper.from_array(idx, "column_table"), numpy_helper.from_array(valid, "valid_table"),
             numpy_helper.from_array(counts, "count_table"),
             numpy_helper.from_array(np.array(PAD_LOGIT, np.float32), "pad_logit")]
    nodes = [
        helper.make_node("MatMul", ["embedding", "W_all"], ["all_mm"], name="heads_MatMul"),
        helper.make_node("Add", ["all_mm", "b_all"], ["all_logits"], name="heads_Add"),
        helper.make_node("Gather", ["column_table", "species_index"], ["columns"], axis=0, name="route_columns"),
        helper.make_node("GatherElements", ["all_logits", "columns"], ["routed"], axis=1, name="route_logits"),
        helper.make_node("Gather", ["valid_table", "species_index"], ["valid"], axis=0, name="route_valid"),
        helper.make_node("Where", ["valid", "routed", "pad_logit"], ["disease_logits"], name="mask_padding"),
        helper.make_node("Gather", ["count_table", "species_index"], ["valid_count"], axis=0, name="route_count"),
    ]
    ins = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d]),
           helper.make_tensor_value_info("species_index", TensorProto.INT64, ["batch"])]
    outs = [helper.make_tensor_value_info("disease_logits", TensorProto.FLOAT, ["batch", kmax]),
            helper.make_tensor_value_info("valid_count", TensorProto.INT64, ["batch"])]
    return _model(nodes, ins, outs, inits, opset, "fused_disease_heads")


def ood_graph(mean: np.ndarray, inv_cov: np.ndarray, threshold: float, *, opset: int = 18):
    """``embedding (N, D) -> distance (N,) float32, is_ood (N,) bool``: Mahalanobis distance and the flag."""
    from onnx import TensorProto, helper, numpy_helper

    d = mean.shape[0]
    inits = [numpy_helper.from_array(np.asarray(mean, np.float32), "mean"),
             numpy_helper.from_array(np.asarray(inv_cov, np.float32), "inv_cov"),
             numpy_helper.from_array(np.array(float(threshold), np.float32), "threshold"),
             numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    nodes = [
        helper.make_node("Sub", ["embedding", "mean"], ["centred"]),
        helper.make_node("MatMul", ["centred", "inv_cov"], ["projected"]),
        helper.make_node("Mul", ["projected", "centred"], ["terms"]),
        helper.make_node("ReduceSum", ["terms", "axes"], ["squared"], keepdims=0),
        helper.make_node("Max", ["squared", "zero"], ["squared_pos"]),
        helper.make_node("Sqrt", ["squared_pos"], ["distance"]),
        helper.make_node("Greater", ["distance", "threshold"], ["is_ood"]),
    ]
    return _model(nodes, [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", d])],
                  [helper.make_tensor_value_info("distance", TensorProto.FLOAT, ["batch"]),
                   helper.make_tensor_value_info("is_ood", TensorProto.BOOL, ["batch"])], inits, opset, "ood_detector")

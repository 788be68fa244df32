"""A hand-built geo-like ONNX model whose outputs are known in closed form: (N, 3) [lat, lon, week] ->
sigmoid(x @ W + b), with labels.txt beside it (built in milliseconds, no training)."""

from __future__ import annotations

import numpy as np
import pytest

#: (code, scientific, common, weight on lat, bias): species 0 everywhere, 1 nowhere, 2 in the north, 3 rare
GEO_SPECIES = (
    ("sp0001", "Genus ubiquus", "Everywhere Bird", 0.0, 3.0),
    ("sp0002", "Genus nullus", "Nowhere Bird", 0.0, -6.0),
    ("sp0003", "Genus borealis", "Northern Bird", 0.2, -4.0),
    ("sp0004", "Genus rarus", "Rare Bird", 0.0, -2.0),
)


def known_probabilities(points: np.ndarray) -> np.ndarray:
    w = np.array([s[3] for s in GEO_SPECIES])
    b = np.array([s[4] for s in GEO_SPECIES])
    return 1.0 / (1.0 + np.exp(-(np.asarray(points, np.float64)[:, :1] * w + b)))


@pytest.fixture(scope="session")
def geo_like_onnx(tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from edgeport.families.geo.labels import write_labels

    d = tmp_path_factory.mktemp("geo_like")
    w = np.zeros((3, len(GEO_SPECIES)), np.float32)
    w[0] = [s[3] for s in GEO_SPECIES]
    b = np.array([s[4] for s in GEO_SPECIES], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "b"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["probabilities"])],
        "geo_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(GEO_SPECIES)])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = d / "geo_like.onnx"
    onnx.save(model, str(path))
    write_labels(d / "labels.txt", [s[:3] for s in GEO_SPECIES])
    return path

"""Converter failures, unsupported sources and the graph helpers behind FP16/INT8 (fast, no conversion)."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from edgeport.errors import ConversionError, UnsupportedFormatError
from edgeport.exporters import FORMATS, ExportOptions, get_exporter
from edgeport.exporters.tflite_common import check_builtin_only
from edgeport.sources.base import ModelHandle, TensorSpec


class DataDependent(nn.Module):
    """Branches on a tensor value: torch.export (and so every PyTorch route) refuses it."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


def _handle(model, framework="torch"):
    return ModelHandle(name="bad", framework=framework, model=model.eval() if framework == "torch" else model,
                       inputs=(TensorSpec("x", (None, 4)),), outputs=(TensorSpec("y", (None, 4)),))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "onnx_fp16", "tflite"])
def test_converter_failure_is_a_conversion_error(tmp_path, fmt):
    spec = FORMATS.get(fmt)
    path = tmp_path / f"bad{spec.extension}"
    with pytest.raises(ConversionError) as e:
        get_exporter(spec)(_handle(DataDependent()), fmt=spec, path=path, options=ExportOptions())
    assert "\n" not in str(e.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


# keras -> TFLite: tests/conversion; keras -> ONNX: tests/exporters/test_keras_onnx.py; keras -> SavedModel: the round trip
@pytest.mark.parametrize(("fmt", "framework"), [("onnx", "onnx"), ("tf", "tflite")])
def test_other_frameworks_are_refused_clearly(tmp_path, fmt, framework):
    spec = FORMATS.get(fmt)
    with pytest.raises(UnsupportedFormatError, match=framework):
        get_exporter(spec)(_handle(object(), framework), fmt=spec, path=tmp_path / "x", options=ExportOptions())


def test_flex_and_custom_ops_are_rejected():
    check_builtin_only(["FULLY_CONNECTED", "GELU"])
    with pytest.raises(ConversionError, match="Flex"):
        check_builtin_only(["FULLY_CONNECTED", "CUSTOM:FlexErf"])
    with pytest.raises(ConversionError, match="custom"):
        check_builtin_only(["CUSTOM:MyOp"])


def test_wrong_output_names_are_a_conversion_error(tmp_path):
    class Two(nn.Module):
        def forward(self, x):
            return {"a": x, "b": x + 1}

    h = ModelHandle(name="t", framework="torch", model=Two(), inputs=(TensorSpec("x", (None, 2)),),
                    outputs=(TensorSpec("a", (None, 2)), TensorSpec("c", (None, 2))))
    spec = FORMATS.get("onnx")
    with pytest.raises(ConversionError, match="lacks"):
        get_exporter(spec)(h, fmt=spec, path=tmp_path / "t.onnx", options=ExportOptions())


# ---------------------------------------------------------------------------------------------- graph helpers


def _graph_with_shared_init():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones(3, np.float32), "w")
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["a"], name="m1"),
        helper.make_node("Add", ["a", "w"], ["y"], name="m2"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _run(model, x):
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def test_unshare_initializers_gives_each_consumer_a_copy():
    from edgeport.exporters.onnx_graph import unshare_initializers

    m = _graph_with_shared_init()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = _run(m, x)
    assert unshare_initializers(m) == 1
    assert m.graph.node[0].input[1] != m.graph.node[1].input[1]
    np.testing.assert_array_equal(_run(m, x), before)


def test_fp16_block_list_keeps_full_precision_between_blocked_nodes():
    """onnxconverter-common casts blocked outputs to FP16 and back; edgeport removes those round trips."""
    from edgeport.exporters.onnx import convert_fp16

    m = _graph_with_shared_init()
    x = np.array([[179.93, 0.1, -33.3331]], dtype=np.float32)
    out, _info = convert_fp16(m, keep_nodes=["m1", "m2"])
    np.testing.assert_array_equal(_run(out, x), x * 1 + 1)
    assert out.graph.output[0].type.tensor_type.elem_type == 1  # float32 I/O kept


def test_fp16_outputs_recast_to_float32_when_converter_leaves_fp16():
    from onnx import TensorProto, helper

    from edgeport.exporters.onnx_graph import force_output_types

    g = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [None, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    assert force_output_types(m, TensorProto.FLOAT) == ["y"]
    got = _run(m, np.array([[1.5, 2.0]], np.float32))
    assert got.dtype == np.float32 and got.tolist() == [[1.5, 2.0]]


@pytest.mark.slow
def test_onnx2tf_never_downloads(tmp_path):
    from edgeport.exporters import _onnx2tf_compat

    with _onnx2tf_compat.offline_onnx2tf(tmp_path):
        import onnx2tf.onnx2tf as core

        data = core.download_test_image_data()
    assert data.shape == (20, 128, 128, 3)
    import onnx2tf.onnx2tf as core

    assert core.download_test_image_data is not _onnx2tf_compat._synthetic_images


@pytest.mark.slow
def test_keep_float_module_paths_map_to_onnx_nodes():
    from _support.torch_models import geo_handle

    from edgeport.exporters import _torch_compat
    from edgeport.exporters.onnx import keep_float_nodes, source_onnx

    h = geo_handle(n_species=8, dim=16, blocks=1)
    m = source_onnx(h, ExportOptions())
    kept = keep_float_nodes(m, ["encoding"])
    ops = {n.op_type for n in m.graph.node if n.name in kept}
    assert {"Sin", "Cos"} <= ops and "Gemm" not in ops
    assert _torch_compat.tflite_scope_regex("model.encoding") == r"(^|/)[^/;]*_model/[^/;]*_encoding([/;]|$)"

"""Typed export options: every choice a named field, checked when built (one clear line on bad input)."""

import pytest

from edgeport.errors import ConfigError
from edgeport.exporters import ExportOptions


def test_defaults_are_the_documented_routes():
    o = ExportOptions()
    assert (o.int8_route, o.torch_onnx_route, o.float_frontend, o.npu_check) == ("converter", "dynamo", False, True)
    assert o.onnx_float_layers is None and o.static_op_types is None and o.calibration_stride == 32
    d = o.to_dict()
    assert d["int8_route"] == "converter" and "extra" not in d


@pytest.mark.parametrize("kw, match", [
    ({"int8_route": "tflite"}, "unknown int8 route 'tflite'; use converter, ai-edge-quantizer"),
    ({"torch_onnx_route": "jit"}, "unknown torch onnx route 'jit'; use dynamo, torchscript"),
    ({"tflite_route": "x"}, "unknown tflite route 'x'; use auto, savedmodel, litert-torch"),
    ({"calibration_method": "kl"}, "unknown calibration method 'kl'"),
    ({"calibration_stride": 0}, "calibration stride must be >= 1"),
    ({"calibration_samples": 0}, "calibration samples must be >= 1"),
    ({"static_op_types": "Conv"}, "static_op_types must be a list of names"),
    ({"onnx_float_layers": [1, 2]}, "onnx_float_layers must be a list of names"),
])
def test_bad_options_are_refused_with_one_line(kw, match):
    with pytest.raises(ConfigError, match=match):
        ExportOptions(**kw)


def test_name_lists_become_tuples_and_free_options_are_gone():
    o = ExportOptions(static_op_types=["Conv", "MatMul"], onnx_float_layers=[])
    assert o.static_op_types == ("Conv", "MatMul") and o.onnx_float_layers == ()
    with pytest.raises(TypeError):
        ExportOptions(extra={"int8_route": "converter"})

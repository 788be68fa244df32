"""Every PyTorch export format, checked by numbers against the torch module through the gate table."""

from __future__ import annotations

import numpy as np
import pytest
from _support.artifacts import GEO_FORMATS, TORCH_FORMATS
from _support.resize import RESIZE_ATOL, resized_rows
from _support.torch_models import torch_outputs

from edgeport.exporters import FORMATS, gate_for
from edgeport.runtimes import open_runner
from edgeport.validation import compare

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("torch_exports")]


def _check(handle, path, fmt_name, rows=200, seed=0, **gate_kw):
    spec = FORMATS.get(fmt_name)
    feeds = handle.reference_inputs(rows, seed)
    runner = open_runner(spec.runtime, path)
    out, failed = runner.run(feeds)
    result = compare(torch_outputs(handle, feeds), out, gate_for(fmt_name, **gate_kw), failed=failed)
    return runner, result


@pytest.mark.parametrize("fmt", GEO_FORMATS)
def test_geo_like_model_passes_its_gate(torch_export, fmt):
    handle, path, notes = torch_export("geo", fmt)
    runner, result = _check(handle, path, fmt)
    assert result.passed, result.failures
    assert result.outputs["probabilities"].top1_rows > 20  # the reference is not degenerate: top-1 is judged
    assert runner.output_names == ("probabilities",)
    assert notes["seconds"] > 0 and notes["route"]


@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_multi_output_keeps_names_and_order(torch_export, fmt):
    handle, path, _ = torch_export("multi", fmt)
    runner, result = _check(handle, path, fmt)
    assert runner.output_names == ("zeta", "alpha")
    assert [t.name for t in runner.inputs] == ["x", "y"]
    assert result.passed, result.failures


@pytest.mark.parametrize("fmt", [f for f in GEO_FORMATS if f not in ("onnx", "tflite", "tf")])
def test_quantized_artifacts_keep_float_io(torch_export, fmt):
    handle, path, _ = torch_export("geo", fmt)
    runner = open_runner(FORMATS.get(fmt).runtime, path)
    dt = runner.io_dtypes()
    assert dt == {"inputs": {"input": "float32"}, "outputs": {"probabilities": "float32"}}
    _, result = _check(handle, path, fmt, rows=64, seed=3)
    assert result.passed, result.failures


def test_onnx_fp16_meets_the_issue_bound_and_keeps_encoding_fp32(torch_export):
    """Issue requirement: max diff <= 0.005 on a non-trivial geo model (gate 0.06)."""
    handle, path, notes = torch_export("geo", "onnx_fp16")
    _, result = _check(handle, path, "onnx_fp16")
    assert result.outputs["probabilities"].max_abs_diff <= 0.005
    assert {"Sin", "Cos", "LayerNormalization"} <= set(notes["ops_kept_fp32"])
    assert notes["fp16_roundtrips_removed"] > 0
    assert path.stat().st_size < 0.6 * torch_export("geo", "onnx")[1].stat().st_size


def test_onnx_fp16_io_variant(torch_export):
    handle, path, _notes = torch_export("geo", "onnx_fp16", fp16_io=True)
    runner = open_runner("onnxruntime", path)
    assert runner.io_dtypes() == {"inputs": {"input": "float16"}, "outputs": {"probabilities": "float16"}}
    _, result = _check(handle, path, "onnx_fp16", fp16_io=True)
    assert result.passed, result.failures


def test_onnx_int8_excludes_keep_float_nodes(torch_export):
    _handle, path, notes = torch_export("geo", "onnx_int8")
    import onnx

    m = onnx.load(str(path))
    ops = {n.op_type for n in m.graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert notes["nodes_kept_float"] and notes["quantized_nodes"] > 0
    assert path.stat().st_size < 0.45 * torch_export("geo", "onnx")[1].stat().st_size


@pytest.mark.parametrize("fmt", [f for f in GEO_FORMATS if f.startswith("tflite")])
def test_tflite_artifacts_hold_builtin_ops_only(torch_export, fmt):
    from edgeport.exporters.tflite_common import tflite_op_names

    _handle, path, notes = torch_export("geo", fmt)
    ops = tflite_op_names(path.read_bytes())
    assert ops and not [o for o in ops if o.startswith("CUSTOM")]  # exact GELU did not become FlexErf
    assert notes["dynamic_batch"] is True and notes["fixed_batch"] is None


def test_saved_model_signature_names(torch_export):
    import tensorflow as tf

    handle, path, _ = torch_export("multi", "tf")
    sig = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert sorted(sig.structured_input_signature[1]) == ["x", "y"]
    assert sorted(sig.structured_outputs) == ["alpha", "zeta"]
    feeds = handle.reference_inputs(7, 5)
    got = sig(**{k: tf.constant(v) for k, v in feeds.items()})
    ref = torch_outputs(handle, feeds)
    for k in ref:
        np.testing.assert_allclose(got[k].numpy(), ref[k], atol=1e-5)


def test_tflite_int8_full_is_integer_inside_with_float_io(torch_export):
    from edgeport.exporters.tflite_common import tflite_op_names

    _handle, path, notes = torch_export("geo", "tflite_int8_full")
    ops = set(tflite_op_names(path.read_bytes()))
    assert {"QUANTIZE", "DEQUANTIZE", "FULLY_CONNECTED"} <= ops
    assert notes["calibration_rows"] > 0 and notes["keep_float_modules"] == ["encoding"]
    runner = open_runner("litert", path)
    assert runner.io_dtypes() == {"inputs": {"input": "float32"}, "outputs": {"probabilities": "float32"}}



@pytest.mark.parametrize("kind,fmt", [("geo", f) for f in RESIZE_ATOL] + [("multi", f) for f in RESIZE_ATOL
                                                                          if f != "tflite_int8_full"])
def test_tflite_resized_to_batch_7_matches_batch_1_rows(torch_export, kind, fmt):
    """Every PyTorch TFLite artifact has -1 on the batch axis and gives the same rows at batch 7 (a user's
    resize_tensor_input) as at batch 1, and those rows pass the gate against torch."""
    handle, path, _ = torch_export(kind, fmt)
    feeds = handle.reference_inputs(23, 3)  # 3 chunks of 7, then 2 rows
    at7 = resized_rows(path, feeds, fmt)
    result = compare(torch_outputs(handle, feeds), at7, gate_for(fmt))
    assert result.passed, result.failures

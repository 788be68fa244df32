"""Runners on PyTorch-made artifacts: N rows (not a multiple of any batch) equal the torch outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _support.torch_models import geo_handle, multi_handle, torch_outputs

from edgeport.errors import SourceError
from edgeport.exporters import FORMATS, gate_for
from edgeport.runtimes import open_runner
from edgeport.runtimes.torch import TorchRunner
from edgeport.validation import compare

ROWS = 37

#: one artifact per runtime (the exporters' tests cover every precision)
BY_RUNTIME = {"onnxruntime": "onnx", "litert": "tflite", "tf": "tf"}


@pytest.mark.slow
@pytest.mark.xdist_group("torch_exports")
@pytest.mark.parametrize("runtime", sorted(BY_RUNTIME))
@pytest.mark.parametrize("kind", ["geo", "multi"])
def test_runner_takes_n_rows_and_matches_torch(torch_export, runtime, kind):
    fmt = BY_RUNTIME[runtime]
    handle, path, _ = torch_export(kind, fmt)
    runner = open_runner(runtime, path)
    feeds = handle.reference_inputs(ROWS, 11)
    out, failed = runner.run(feeds, batch_size=16)
    assert not failed.any()
    ref = torch_outputs(handle, feeds)
    assert list(out) == list(handle.output_names)
    for name in ref:
        assert out[name].shape == ref[name].shape
        np.testing.assert_allclose(out[name], ref[name], atol=gate_for(fmt).max_abs_diff)


@pytest.mark.slow
@pytest.mark.xdist_group("torch_exports")
def test_litert_fixed_batch_artifact_is_fed_in_chunks(torch_export):
    """litert-torch traces a fixed batch; the runner detects that a resize does not work and pads chunks."""
    handle, path, notes = torch_export("geo", "tflite", tflite_batch=4, tflite_route="litert-torch")
    assert notes["fixed_batch"] == 4 and notes["dynamic_batch"] is False
    runner = open_runner("litert", path)
    assert runner.fixed_batch == 4 and runner.resizable is False
    feeds = handle.reference_inputs(ROWS, 2)
    out, failed = runner.run(feeds)
    ref = torch_outputs(handle, feeds)
    assert not failed.any() and out["probabilities"].shape == (ROWS, ref["probabilities"].shape[1])
    result = compare(ref, out, gate_for("tflite"))
    assert result.passed, result.failures
    with pytest.raises(ValueError, match="batches of 4"):
        runner.infer({"input": feeds["input"][:3]})
    # what a LiteRT user sees: a non-strict resize returns 4 rows for 7 inputs, a strict one is refused
    wrong = runner.run_resized({"input": feeds["input"][:7]}, 7)
    assert wrong["probabilities"].shape[0] == 4
    with pytest.raises(Exception, match="(?i)resize|dimension|shape"):
        runner.run_resized({"input": feeds["input"][:7]}, 7, strict=True)


@pytest.mark.slow
@pytest.mark.xdist_group("torch_exports")
def test_litert_runner_reports_dtypes_and_threads(torch_export):
    _, path, _ = torch_export("multi", "tflite_int8")
    runner = open_runner("litert", path, threads=2)
    assert runner.io_dtypes() == {"inputs": {"x": "float32", "y": "float32"},
                                 "outputs": {"zeta": "float32", "alpha": "float32"}}


def test_torch_runner_from_handle_matches_module():
    h = multi_handle()
    feeds = h.reference_inputs(ROWS, 0)
    runner = TorchRunner.from_handle(h)
    out, failed = runner.run(feeds, batch_size=10)
    ref = torch_outputs(h, feeds)
    assert runner.output_names == ("zeta", "alpha") and not failed.any()
    for k in ref:
        assert out[k].dtype == np.float32
        np.testing.assert_allclose(out[k], ref[k], atol=1e-6)  # batch 10 vs 37: float summation order


def test_torch_runner_opens_a_torch_export_program(tmp_path):
    h = geo_handle(n_species=12, dim=16, blocks=1)
    x = torch.from_numpy(h.reference_inputs(4, 0)["input"])
    program = torch.export.export(h.model, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    path = tmp_path / "geo.pt2"
    torch.export.save(program, str(path))
    runner = TorchRunner.open(path, inputs=h.inputs, output_names=("probabilities",))
    feeds = h.reference_inputs(ROWS, 1)
    out, _ = runner.run(feeds)
    np.testing.assert_allclose(out["probabilities"], torch_outputs(h, feeds)["probabilities"], atol=1e-6)


@pytest.mark.parametrize("runtime", ["onnxruntime", "litert", "tf", "torch"])
def test_missing_artifact_is_a_source_error(tmp_path, runtime):
    with pytest.raises(SourceError):
        open_runner(runtime, tmp_path / "nothing.bin")


@pytest.mark.slow
@pytest.mark.xdist_group("torch_exports")
def test_ort_runner_threads_and_fp16_io(torch_export):
    handle, path, _ = torch_export("geo", "onnx_fp16", fp16_io=True)
    runner = open_runner("onnxruntime", path, threads=1)
    assert runner.session.get_session_options().intra_op_num_threads == 1
    feeds = handle.reference_inputs(ROWS, 4)
    out, _ = runner.run(feeds)  # float32 feeds are cast to the model's float16 input
    assert out["probabilities"].dtype == np.float32
    result = compare(torch_outputs(handle, feeds), out, gate_for("onnx_fp16", fp16_io=True))
    assert result.passed, result.failures
    assert FORMATS.get("onnx_fp16").runtime == "onnxruntime"

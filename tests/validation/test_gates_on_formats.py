"""Gates are data on the formats, checked when built; the comparator alone decides pass/fail."""

import numpy as np
import pytest

from edgeport.errors import ConfigError
from edgeport.exporters import FORMATS, FormatSpec, gate_for
from edgeport.validation import Comparison, Gate, OtherRun, compare


def _probs(n=64, d=20, seed=0):
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-rng.normal(0, 3, size=(n, d)))).astype(np.float32)


@pytest.mark.parametrize("values", [{"min_cosine": 1.5}, {"min_top1": 1.01}, {"max_abs_diff": -1e-4},
                                    {"min_pearson": -0.1}, {"max_failed_rows": -1}])
def test_a_gate_no_artifact_can_meet_is_refused_when_built(values):
    with pytest.raises(ConfigError):
        Gate(**values)
    with pytest.raises(ConfigError):
        Gate().override(**values)


def test_every_registered_format_owns_a_gate():
    for name, spec in FORMATS.items():
        assert isinstance(spec.gate, Gate), name
        assert gate_for(name) == spec.gate.with_tol(1e-4)
    with pytest.raises(ConfigError, match="needs a Gate"):
        FormatSpec("x", "onnx", "fp32", "", ".onnx", "onnxruntime", frozenset({"torch"}), None)


def test_reduced_precision_gates_require_float32_io_unless_fp16_io():
    for name, spec in FORMATS.items():
        assert spec.gate.float32_io == (spec.precision != "fp32"), name
    assert not gate_for("onnx_fp16", fp16_io=True).float32_io


def test_comparison_is_truthy_only_when_it_passed():
    ref = _probs()
    ok = compare({"p": ref}, {"p": ref.copy()}, gate_for("onnx"))
    bad = compare({"p": ref}, {"p": ref + 0.1}, gate_for("onnx"))
    assert ok and ok.passed
    assert not bad and not bad.passed
    assert isinstance(bad, Comparison)


def test_float_io_is_judged_by_the_comparator():
    ref = _probs()
    io = {"inputs": {"x": "int8"}, "outputs": {"p": "float32"}}
    cmp = compare({"p": ref}, {"p": ref.copy()}, gate_for("tflite_int8_full"), io_dtypes=io)
    assert not cmp and any("float32 I/O" in f and "input x" in f for f in cmp.failures)
    # FP32 formats and --fp16-io do not require float32 I/O; the same numbers pass
    assert compare({"p": ref}, {"p": ref.copy()}, gate_for("onnx"), io_dtypes=io)
    fp16 = {"inputs": {"x": "float16"}, "outputs": {"p": "float16"}}
    assert compare({"p": ref}, {"p": ref.copy()}, gate_for("onnx_fp16", fp16_io=True), io_dtypes=fp16)
    assert not compare({"p": ref}, {"p": ref.copy()}, gate_for("onnx_fp16"), io_dtypes=fp16)


def test_other_runs_of_the_artifact_are_judged_by_the_comparator():
    ref = _probs()
    gate = gate_for("tflite")
    wrong = compare({"p": ref}, {"p": ref + 0.5}, gate)
    right = compare({"p": ref}, {"p": ref.copy()}, gate)
    cmp = compare({"p": ref}, {"p": ref.copy()}, gate,
                  other_runs=[OtherRun("at batch 7", comparison=wrong), OtherRun("at batch 1", comparison=right)])
    assert not cmp
    assert any(f.startswith("at batch 7: p.max_abs_diff") for f in cmp.failures)
    assert not any(f.startswith("at batch 1") for f in cmp.failures)
    refused = compare({"p": ref}, {"p": ref.copy()}, gate, other_runs=[OtherRun("batch 7", error="failed: boom")])
    assert not refused and "batch 7: failed: boom" in refused.failures
    assert compare({"p": ref}, {"p": ref.copy()}, gate, other_runs=[OtherRun("batch 1", comparison=right)])

import json

import numpy as np
import pytest

from edgeport.errors import ConfigError
from edgeport.exporters import FORMATS, gate_for, parse_gate_overrides
from edgeport.validation import compare, output_metrics


def _probs(n=64, d=20, seed=0):
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-rng.normal(0, 3, size=(n, d)))).astype(np.float32)


def test_identical_outputs_pass_every_gate():
    ref = {"p": _probs()}
    for name in FORMATS.names():
        result = compare(ref, {"p": ref["p"].copy()}, gate_for(name))
        assert result.passed, (name, result.failures)
        m = result.outputs["p"]
        assert m.max_abs_diff == 0 and m.cosine_mean == pytest.approx(1.0) and m.top1_agreement == 1.0


def test_max_abs_diff_gate_fails_and_reports_figure():
    ref = _probs()
    cand = ref.copy()
    cand[3, 4] += 2e-3
    result = compare({"p": ref}, {"p": cand}, gate_for("onnx", tol=1e-4))
    assert not result.passed
    assert result.outputs["p"].max_abs_diff == pytest.approx(2e-3, rel=1e-3)
    assert any("max_abs_diff" in f and "<= 0.0001" in f for f in result.failures)
    assert compare({"p": ref}, {"p": cand}, gate_for("onnx", tol=1e-2)).passed


def test_top1_ignores_near_ties_and_catches_swaps():
    ref = np.array([[0.9, 0.1, 0.0], [0.50, 0.48, 0.0], [0.2, 0.7, 0.1]], dtype=np.float32)
    cand = np.array([[0.1, 0.9, 0.0], [0.48, 0.50, 0.0], [0.2, 0.7, 0.1]], dtype=np.float32)
    m = output_metrics(ref, cand)
    assert m.top1_rows == 2  # row 1 is a near-tie (lead 0.02 < 0.05)
    assert m.top1_agreement == pytest.approx(0.5)


def test_a_gated_metric_that_cannot_be_computed_is_said_not_judged():
    # every row has near-tied leaders (many classes saturate near 1): top-1 has no clear row to judge
    ref = np.full((50, 10), 0.99, dtype=np.float32)
    ref[:, 5:] = np.linspace(0, 0.5, 50)[:, None]
    result = compare({"p": ref}, {"p": ref + 1e-3}, gate_for("onnx_int8"))
    assert result.outputs["p"].top1_agreement is None
    assert [c.metric for c in result.checks] == ["cosine_mean"]
    assert result.not_judged == [
        "p.top1_agreement: no reference row's top-1 leads its runner-up by 0.05 (near-ties are noise), so it is not judged"
    ]
    assert result.to_dict()["not_judged"] == result.not_judged
    assert compare({"p": _probs()}, {"p": _probs()}, gate_for("onnx_int8")).not_judged == []


def test_centred_pearson_sees_ranking_errors_that_cosine_misses():
    rng = np.random.default_rng(1)
    base = np.full((100, 10), 0.5)
    ref = base + rng.normal(0, 0.02, size=base.shape)
    cand = base + rng.normal(0, 0.02, size=base.shape)  # same level, unrelated variation
    m = output_metrics(ref, cand)
    assert m.cosine_mean > 0.99
    assert abs(m.centred_pearson) < 0.3


def test_zero_vectors_give_no_nan():
    ref = np.zeros((4, 5))
    m = output_metrics(ref, ref)
    assert m.cosine_mean == 1.0 and m.pearson == 1.0 and m.sqnr_db == 300.0
    m = output_metrics(ref, np.ones((4, 5)))
    assert m.cosine_mean == 0.0 and not np.isnan(m.pearson)


def test_cosine_rows_are_the_rows_behind_the_mean_and_worst():
    from edgeport.validation.metrics import cosine_rows

    rng = np.random.default_rng(3)
    ref = rng.normal(size=(6, 2, 4))
    cand = ref + rng.normal(scale=0.3, size=ref.shape)
    cand[4] = -ref[4]
    cos = cosine_rows(ref, cand)
    m = output_metrics(ref, cand)
    assert cos.shape == (6,) and cos[4] == pytest.approx(-1.0)
    assert cos.mean() == pytest.approx(m.cosine_mean) and cos.min() == pytest.approx(m.cosine_worst)
    assert cosine_rows(np.zeros((2, 3)), np.zeros((2, 3))).tolist() == [1.0, 1.0]


def test_degenerate_reference_does_not_pass():
    ref = np.tile(_probs(1), (50, 1))
    result = compare({"p": ref}, {"p": ref.copy()}, gate_for("onnx"))
    assert not result.passed
    assert any("degenerate reference" in f for f in result.failures)


def test_failed_rows_fail_the_gate_and_are_excluded_from_metrics():
    ref = _probs()
    cand = ref.copy()
    cand[5] = np.nan
    failed = np.zeros(len(ref), dtype=bool)
    failed[5] = True
    result = compare({"p": ref}, {"p": cand}, gate_for("tflite_int8_full"), failed=failed)
    assert not result.passed and result.failed_rows == 1
    assert result.outputs["p"].rows == len(ref) - 1
    assert np.isfinite(result.outputs["p"].max_abs_diff)


def test_missing_output_is_reported():
    result = compare({"a": _probs(), "b": _probs()}, {"a": _probs()}, gate_for("onnx"))
    assert not result.passed and "lacks output" in result.failures[0]


def test_result_serialises_to_json():
    ref = _probs()
    d = compare({"p": ref}, {"p": ref + 1e-5}, gate_for("onnx")).to_dict()
    assert json.loads(json.dumps(d))["passed"] is True


def test_gate_overrides_parse_and_validate():
    ov = parse_gate_overrides(["onnx_int8.min_cosine=0.9"])
    assert gate_for("onnx_int8", overrides=ov).min_cosine == 0.9
    assert gate_for("onnx_fp16", fp16_io=True).max_abs_diff == 0.05
    with pytest.raises(ConfigError, match="FORMAT.METRIC=VALUE"):
        parse_gate_overrides(["nonsense"])
    with pytest.raises(ConfigError, match="unknown gate metric"):
        gate_for("onnx", overrides={"onnx": {"min_bogus": 1.0}})


def test_one_value_per_row_is_not_passed_by_sign_agreement():
    # a [rows, 1] sigmoid score (a wake-word classifier's output): per-row cosine is 1 for any positive
    # candidate, so a constant 0.5 would pass the INT8 gate; across the rows it is judged and fails
    rng = np.random.default_rng(0)
    ref = (1 / (1 + np.exp(-rng.normal(0, 2, size=(64, 1))))).astype(np.float32)
    constant = np.full_like(ref, 0.5)
    result = compare({"p": ref}, {"p": constant}, gate_for("onnx_int8"))
    assert not result.passed
    assert result.outputs["p"].cosine_mean < 0.5
    close = ref + rng.normal(0, 1e-3, size=ref.shape).astype(np.float32)
    good = compare({"p": ref}, {"p": close}, gate_for("onnx_int8"))
    assert good.passed, good.failures
    assert good.outputs["p"].cosine_mean > 0.999

"""Accuracy-driven float fallback (exporters/fallback.py): plain INT8 of a model with one INT8-hostile layer
misses its gate, the fallback passes with that layer float; the loop's trial, budget and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeport.errors import ConfigError
from edgeport.exporters import ExportOptions, gate_for
from edgeport.exporters.fallback import (
    auto_fallback,
    fallback_export,
    gate_margin,
    steps_summary,
)
from edgeport.validation import compare
from tests._support import hostile

OPTIONS = ExportOptions(calibration_samples=128)


def testtflite_keras_full_int8_keeps_the_hostile_layer_float(tmp_path):
    from edgeport.runtimes import open_runner

    handle = hostile.keras_hostile_handle()
    res = fallback_export(handle, "tflite_int8_full", work_dir=tmp_path, options=OPTIONS, budget=2,
                          latency_repeats=5)
    plain, final = res.steps[0], res.steps[-1]
    assert not plain.passed and plain.float_layers == []
    assert res.passed and res.float_layers == ["hostile"], res.table()
    assert final.chosen_by == "per-layer ranking" and len(res.steps) == 2
    assert res.per_layer.layers()[0] == "hostile"
    # the chosen artifact, judged again here against Keras on other rows
    feeds = hostile.feeds(150, 55)
    got, failed = open_runner("litert", res.artifact).run(feeds)
    ref = {"logits": handle.model.predict(feeds["x"], verbose=0)}
    assert compare(ref, got, gate_for("tflite_int8_full"), failed=failed).passed
    plain_got, _ = open_runner("litert", Path(plain.artifact)).run(feeds)
    assert not compare(ref, plain_got, gate_for("tflite_int8_full")).passed
    cost = res.cost()
    assert cost["size_bytes_final"] > 0 and cost["size_bytes_int8"] > 0
    assert cost["latency_p50_ms_final"] > 0 and cost["latency_ratio"] > 0
    data = json.loads(res.to_json())
    assert data["float_layers"] == ["hostile"] and data["steps"][0]["passed"] is False
    assert "hostile" in res.table()


def test_onnx_static_keeps_the_hostile_linear_float(tmp_path):
    pytest.importorskip("torch")
    import onnx

    res = fallback_export(hostile.torch_hostile_handle(), "onnx_int8_static", work_dir=tmp_path, options=OPTIONS,
                          budget=3, latency_repeats=5)
    assert not res.steps[0].passed
    assert res.passed and res.float_layers == ["hostile.fc_out"], res.table()
    assert res.steps[0].headline["cosine_mean"] < 0.99 <= res.steps[-1].headline["cosine_mean"]
    # in the chosen artifact that Linear reads float activations and float weights (no QDQ pair in front)
    model = onnx.load_model(str(res.artifact))
    fc_out = next(n for n in model.graph.node if n.output and n.output[0] == res.per_layer.rows[0].tensor)
    assert fc_out.op_type == "Gemm"
    assert not any(i.endswith("_DequantizeLinear_Output") for i in fc_out.input)


# ----------------------------------------------------------------------------------------------- the loop


class _Fake:
    """Artifacts as sets of float layers; the outputs' noise falls only when ``cure`` is float, and the
    per-layer ranking names ``ranked`` first."""

    def __init__(self, tmp: Path, cure: str, ranked: list[str]):
        self.tmp, self.cure, self.ranked = tmp, cure, ranked
        rng = np.random.default_rng(0)
        self.ref = {"y": rng.normal(size=(100, 8))}
        self.noise = rng.normal(size=(100, 8))
        self.built: list[tuple[str, ...]] = []
        self.paths: dict[Path, tuple[str, ...]] = {}

    def build(self, layers):
        self.built.append(tuple(layers))
        p = self.tmp / f"a{len(self.built)}.bin"
        p.write_bytes(b"x" * (100 + 10 * len(layers)))
        self.paths[p] = tuple(layers)
        return p

    def judge(self, p):
        scale = 0.002 if self.cure in self.paths[p] else 1.0
        return compare(self.ref, {"y": self.ref["y"] + scale * self.noise}, gate_for("onnx_int8_static"))

    def report(self, p):
        class R:
            def layers(_self):
                return list(self.ranked)

        return R()


def test_trial_finds_the_layer_the_ranking_missed(tmp_path):
    fake = _Fake(tmp_path, cure="c", ranked=["a", "b", "c", "d"])
    res = auto_fallback(fake.build, fake.judge, fake.report, budget=2, trial_candidates=3,
                        latency=lambda p: {"p50_ms": 1.0 + p.stat().st_size / 1000})
    assert res.passed and res.float_layers == ["c"]
    step = res.steps[1]
    assert step.chosen_by == "trial" and [t["layer"] for t in step.trials] == ["a", "b", "c"]
    assert fake.built == [(), ("a",), ("b",), ("c",)]  # the trial stops at the first layer that passes
    assert res.cost()["size_bytes_added"] == 10
    summary = steps_summary(res)
    assert [s["float_layers"] for s in summary] == [[], ["c"]] and summary[1]["chosen_by"] == "trial"
    assert summary[1]["latency_p50_ms"] == pytest.approx(1.11)


def test_budget_is_spent_when_nothing_helps(tmp_path):
    fake = _Fake(tmp_path, cure="zzz", ranked=["a", "b", "c"])
    res = auto_fallback(fake.build, fake.judge, fake.report, budget=2, trial_candidates=1)
    assert not res.passed and len(res.float_layers) == 2 and "budget of 2" in res.stopped
    assert res.steps[-1].gate_margin < 0


def test_no_fallback_when_the_plain_artifact_passes(tmp_path):
    fake = _Fake(tmp_path, cure="", ranked=["a"])
    fake.judge = lambda p: compare(fake.ref, {"y": fake.ref["y"]}, gate_for("onnx_int8_static"))
    res = auto_fallback(fake.build, fake.judge, fake.report, budget=3)
    assert res.passed and res.float_layers == [] and fake.built == [()]


def test_gate_margin_sign():
    ref = {"y": np.random.default_rng(1).normal(size=(50, 6))}
    good = compare(ref, {"y": ref["y"]}, gate_for("onnx_int8_static"))
    bad = compare(ref, {"y": -ref["y"]}, gate_for("onnx_int8_static"))
    assert gate_margin(good) > 0 > gate_margin(bad)


@pytest.mark.parametrize("budget", [0, -1, 1.5])
def test_bad_budget_is_refused(tmp_path, budget):
    fake = _Fake(tmp_path, cure="a", ranked=["a"])
    with pytest.raises(ConfigError, match="--fallback-budget"):
        auto_fallback(fake.build, fake.judge, fake.report, budget=budget)
    assert fake.built == []


def test_other_formats_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="applies to tflite_int8_full, onnx_int8_static"):
        fallback_export(hostile.keras_hostile_handle(), "onnx_int8", work_dir=tmp_path)


def test_tflite_of_a_torch_source_is_refused_before_any_work(tmp_path):
    """The PyTorch / ONNX TFLite route cannot keep one layer float: refused with the format to use instead,
    and the export pipeline records the skip instead of rebuilding the same artifact ``budget`` times."""
    from edgeport.exporters.fallback import not_applicable

    pytest.importorskip("torch")
    with pytest.raises(ConfigError, match="tflite_int8_full of a torch source.*use onnx_int8_static"):
        fallback_export(hostile.torch_hostile_handle(), "tflite_int8_full", work_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    assert not_applicable("tflite_int8_full", "keras") is None and not_applicable("onnx_int8_static", "torch") is None
    assert "onnx_int8_static" in not_applicable("tflite_int8_full", "onnx")


def test_export_auto_fallback_passes_with_the_hostile_linear_float(tmp_path):
    """The pipeline: plain onnx_int8_static misses its gate; with auto_fallback the export passes, the kept
    layer and each step are in the manifest, and the artifact judged is the fallback's."""
    pytest.importorskip("torch")
    from edgeport.export import ExportConfig, export_handle
    from tests._support.strict_json import strict_load

    plain = export_handle(hostile.torch_hostile_handle(), ExportConfig(formats=("onnx_int8_static",),
                                                                       outdir=tmp_path / "plain"))
    assert not plain.passed and "fallback" not in plain.artifacts[0].notes
    fixed = export_handle(hostile.torch_hostile_handle(), ExportConfig(formats=("onnx_int8_static",),
                                                                       outdir=tmp_path / "fb", auto_fallback=True))
    assert fixed.passed, fixed.artifacts[0].comparison.failures
    art = strict_load(tmp_path / "fb" / "manifest.json")["artifacts"][0]
    assert art["status"] == "passed" and art["notes"]["fallback"]["float_layers"] == ["hostile.fc_out"]
    assert not art["notes"]["fallback"]["steps"][0]["passed"] and art["notes"]["fallback"]["passed"]
    # judged again from outside the pipeline: the file in ONNX Runtime against the torch model on fresh rows
    import torch

    from edgeport.runtimes import open_runner

    x = hostile.feeds(64, 7)
    with torch.no_grad():
        ref = {"logits": hostile.torch_hostile_handle().model(torch.from_numpy(x["x"])).numpy()}
    got, _ = open_runner("onnxruntime", tmp_path / "fb" / art["file"]).run(x)
    assert compare(ref, got, gate_for("onnx_int8_static")).passed

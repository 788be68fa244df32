"""``edgeport validate ARTIFACT --reference SOURCE_OR_ARTIFACT``: the comparator on any pair, the gate inferred
from the artifact, validation.json, exit codes 0 / 1 / 2."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.cli.main import main
from edgeport.validate import infer_format
from tests._support import onnx_models
from tests._support.strict_json import strict_load


@pytest.fixture(scope="module")
def third_party_export(tmp_path_factory):
    return onnx_models.export_all(tmp_path_factory)


def _validate(*args) -> int:
    return main(["validate", *map(str, args)])


@pytest.mark.slow
def test_tflite_validates_against_the_onnx_of_the_same_model(third_party_export, tmp_path, capsys):
    src, outdir, _ = third_party_export
    out = tmp_path / "v"
    assert _validate(outdir / "third_party.tflite", "--reference", src, "--outdir", out) == 0
    text = capsys.readouterr().out
    assert "PASS" in text and "gate: tflite" in text and "inferred" in text
    data = strict_load(out / "validation.json")
    assert data["all_passed"] is True
    res = data["artifacts"]["tflite"]
    assert res["passed"] and res["rows"] == 200 and res["outputs"]["logits"]["max_abs_diff"] <= 1e-4
    assert data["reference_inputs"]["source"] == "seeded random"
    assert data["input_mapping"] == {"a": "a", "b": "b"}


@pytest.mark.slow
def test_a_different_model_fails_with_exit_1_and_its_figures(third_party_export, tmp_path, capsys):
    _, outdir, _ = third_party_export
    other = onnx_models.third_party_model(tmp_path / "other.onnx", seed=1, batch=None)
    report = tmp_path / "r" / "validation.json"
    assert _validate(outdir / "third_party.tflite", "--reference", other, "--report-json", report) == 1
    assert "FAIL" in capsys.readouterr().out
    data = strict_load(report)
    assert data["all_passed"] is False and data["artifacts"]["tflite"]["failures"]
    assert data["artifacts"]["tflite"]["outputs"]["logits"]["max_abs_diff"] > 0.1


@pytest.mark.slow
def test_gate_is_inferred_from_the_artifact_and_can_be_chosen(third_party_export, tmp_path, capsys):
    src, outdir, _ = third_party_export
    expected = {
        "third_party.onnx": "onnx", "third_party_fp16.onnx": "onnx_fp16", "third_party_int8.onnx": "onnx_int8",
        "third_party_int8_static.onnx": "onnx_int8_static", "third_party.tflite": "tflite",
        "third_party_fp16.tflite": "tflite_fp16", "third_party_int8.tflite": "tflite_int8",
        "third_party_quantized.tflite": "tflite_int8_full", "saved_model": "tf",
    }
    assert {name: infer_format(outdir / name)[0] for name in expected} == expected
    # the INT8 artifact passes its inferred INT8 gate, and fails the FP32 one when that is asked for
    int8 = outdir / "third_party_int8.onnx"
    assert _validate(int8, "--reference", src) == 0
    assert "gate: onnx_int8 (cos>=0.99,top1>=0.98)" in capsys.readouterr().out
    assert _validate(int8, "--reference", src, "--gate", "onnx") == 1
    assert "chosen with --gate" in capsys.readouterr().out
    assert _validate(int8, "--reference", src, "--gate", "min_cosine=1") == 1
    # an artifact against another artifact: the SavedModel against the FP32 TFLite
    assert _validate(outdir / "saved_model", "--reference", outdir / "third_party.tflite") == 0


def test_onnx_against_onnx_with_reference_inputs_and_ranges(tmp_path, capsys):
    src = onnx_models.third_party_model(tmp_path / "m.onnx", batch=None, external=False)
    same = onnx_models.third_party_model(tmp_path / "copy" / "m.onnx", batch=1)
    np.savez(tmp_path / "in.npz", **onnx_models.feeds(30, 2))
    assert _validate(same, "--reference", src, "--reference-inputs", tmp_path / "in.npz") == 0
    assert "30 rows" in capsys.readouterr().out
    assert _validate(same, "--reference", src, "--input-range", "a=-1,1", "--reference-rows", "20") == 0
    # an FP16 copy of the model (FP16 weights and I/O), judged by the FP16-I/O gate inferred from the file
    half = onnx_models.third_party_model(tmp_path / "half.onnx", fp16=True, batch=None, external=False)
    assert _validate(half, "--reference", src) == 0
    assert "gate: onnx_fp16_io (max<=0.05), inferred: ONNX with FP16 weights and FP16 inputs" in \
        capsys.readouterr().out
    assert _validate(half, "--reference", src, "--gate", "max_abs_diff=1e-5") == 1  # FP16 rounding is visible


def test_bad_input_gives_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    src = onnx_models.third_party_model(tmp_path / "m.onnx", batch=None)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    missing_data = onnx_models.third_party_model(tmp_path / "nodata" / "m.onnx")
    (tmp_path / "nodata" / "m.onnx.data").unlink()
    cases = [
        ((junk, "--reference", src), "not a TFLite model"),
        ((missing_data, "--reference", src), "m.onnx.data"),
        ((src, "--reference", missing_data), "m.onnx.data"),
        ((src, "--reference", tmp_path / "nope.onnx"), "not found"),
        ((src, "--reference", src, "--gate", "min_cosine=2"), "min_cosine"),
        ((src, "--reference", src, "--input-range", "q=0,1"), "q"),
    ]
    for k, (args, words) in enumerate(cases):
        out = tmp_path / f"out{k}"
        assert _validate(*args, "--outdir", out) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (args, err)
        assert not out.exists()


TINY_MODULE = '''
import torch
from torch import nn


def build(width=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 5))
'''


def test_pytorch_checkpoint_with_factory_against_its_onnx(tmp_path, monkeypatch, capsys):
    import torch

    (tmp_path / "tiny_user_model.py").write_text(TINY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import tiny_user_model

    ckpt = tmp_path / "tiny.pt"
    torch.save({"model_config": {"width": 16}, "model_state_dict": tiny_user_model.build(16).state_dict()}, ckpt)
    src = ("--factory", "tiny_user_model:build", "--input-shape", "x=N,8", "--output-names", "y")
    out = tmp_path / "exp"
    assert main(["export", str(ckpt), *src, "--formats", "onnx", "onnx_int8",
                 "--outdir", str(out)]) == 0
    capsys.readouterr()
    assert _validate(out / "tiny.onnx", "--reference", ckpt, *src, "--report-json", tmp_path / "v.json") == 0
    data = strict_load(tmp_path / "v.json")
    assert data["reference"]["notes"]["framework"] == "torch" and data["artifact"]["format"] == "onnx"
    assert data["artifacts"]["onnx"]["outputs"]["y"]["max_abs_diff"] <= 1e-4
    # the other way round: the checkpoint judged against its INT8 ONNX, with the FP32 gate it cannot meet
    assert _validate(ckpt, "--reference", out / "tiny_int8.onnx", *src) == 1
    assert "gate: fp32" in capsys.readouterr().out

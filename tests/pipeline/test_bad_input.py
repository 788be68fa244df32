"""Bad input (SPEC §7): one clear line, a non-zero exit, and nothing valid-looking left behind."""

from __future__ import annotations

import json
import sys

import pytest

from edgeport.cli.main import main
from edgeport.errors import ConfigError, UnsupportedFormatError

pytestmark = pytest.mark.xdist_group("geo_export")


def _run(capsys, *argv):
    code = main(["export", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    return code, err


def _files(d):
    return sorted(p.name for p in d.rglob("*")) if d.exists() else []


def test_missing_checkpoint(tmp_path, capsys):
    out = tmp_path / "out"
    code, err = _run(capsys, tmp_path / "nope.pt", "--outdir", out)
    assert code == 2
    assert err.count("\n") == 0 and "model source not found" in err and "nope.pt" in err
    assert _files(out) == []


def test_default_checkpoint_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _run(capsys, "--outdir", "out")
    assert code == 2 and "checkpoints/checkpoint_best.pt" in err


def test_foreign_checkpoint(tmp_path, capsys):
    import torch

    p = tmp_path / "foreign.pt"
    torch.save({"optimizer": {"lr": 0.1}, "epoch": 3}, p)
    code, err = _run(capsys, p, "--outdir", tmp_path / "out")
    assert code == 2 and "no 'model_state_dict'" in err and "epoch" in err
    assert _files(tmp_path / "out") == []


def test_not_a_checkpoint_at_all(tmp_path, capsys):
    p = tmp_path / "garbage.pt"
    p.write_bytes(b"this is not a torch file")
    code, err = _run(capsys, p, "--outdir", tmp_path / "out")
    assert code == 2 and "not a readable PyTorch checkpoint" in err


def test_unsafe_checkpoint_needs_trust_source(tmp_path, capsys):
    import torch

    p = tmp_path / "whole_module.pt"
    torch.save(torch.nn.Linear(3, 2), p)  # a pickled module, not weights
    code, err = _run(capsys, p, "--outdir", tmp_path / "out")
    assert code == 2 and "--trust-source" in err


def test_factory_that_cannot_be_imported(geo_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _run(capsys, geo_checkpoint, "--factory", "no_such_module:build", "--outdir", tmp_path / "out")
    assert code == 2 and "cannot import factory module 'no_such_module'" in err and "PYTHONPATH" in err
    (tmp_path / "broken_factory.py").write_text("raise RuntimeError('boom at import')\n")
    code, err = _run(capsys, geo_checkpoint, "--factory", "broken_factory:build", "--outdir", tmp_path / "out")
    assert code == 2 and "boom at import" in err
    code, err = _run(capsys, geo_checkpoint, "--factory", "no_colon", "--outdir", tmp_path / "out")
    assert code == 2 and "module:function" in err
    assert _files(tmp_path / "out") == []


def test_factory_whose_model_does_not_fit_the_weights(geo_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wrong_model.py").write_text(
        "import torch\ndef build(**cfg):\n    return torch.nn.Linear(3, 2)\n"
    )
    code, err = _run(capsys, geo_checkpoint, "--factory", "wrong_model:build", "--outdir", tmp_path / "out")
    assert code == 2 and "do not fit the factory's model" in err


def test_unknown_format_cli(geo_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", str(geo_checkpoint), "--formats", "onnx_int4", "--outdir", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'onnx_int4'" in err and "onnx_fp16" in err


def test_unknown_format_api(geo_checkpoint, tmp_path):
    from edgeport.export import export

    with pytest.raises(UnsupportedFormatError, match=r"Unknown format 'coreml'. Available: \[.*'onnx'"):
        export(geo_checkpoint, formats=["coreml"], outdir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_all_must_stand_alone(geo_checkpoint, tmp_path):
    from edgeport.export import export

    with pytest.raises(ConfigError, match="pass it alone"):
        export(geo_checkpoint, formats=["all", "onnx"], outdir=tmp_path / "o")


@pytest.mark.slow
def test_outdir_with_earlier_exports_is_not_overwritten(geo_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code, _ = _run(capsys, geo_checkpoint, "--formats", "onnx", "--outdir", out)
    assert code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, err = _run(capsys, geo_checkpoint, "--formats", "onnx", "--outdir", out)
    assert code == 2 and "holds earlier exports" in err and "--force" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    code, _ = _run(capsys, geo_checkpoint, "--formats", "onnx", "--outdir", out, "--force")
    assert code == 0


@pytest.mark.slow
def test_a_failing_gate_marks_the_artifact_failed_and_others_still_pass(geo_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["export", str(geo_checkpoint), "--formats", "onnx", "onnx_fp16", "--outdir", str(out),
                 "--gate", "onnx_fp16.max_abs_diff=1e-9"])
    printed = capsys.readouterr().out
    assert code == 1
    names = _files(out)
    assert "geomodel.onnx" in names and "geomodel_fp16.failed.onnx" in names
    assert "geomodel_fp16.onnx" not in names
    assert not [n for n in names if n.startswith(".tmp")]
    manifest = json.loads((out / "manifest.json").read_text())
    status = {a["format"]: a["status"] for a in manifest["artifacts"]}
    assert status == {"onnx": "passed", "onnx_fp16": "failed"}
    assert manifest["all_passed"] is False
    assert "FAIL" in printed and "PASS" in printed and "max_abs_diff" in printed


@pytest.mark.slow
def test_a_crashing_exporter_does_not_stop_the_others(geo_checkpoint, tmp_path, capsys, monkeypatch):
    import edgeport.exporters.tflite as tfl

    def boom(*a, **k):
        kw_path = k["path"]
        kw_path.write_bytes(b"half a flatbuffer")  # leaves a partial file at the temp name, then dies
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(tfl, "export", boom)
    out = tmp_path / "out"
    code = main(["export", str(geo_checkpoint), "--formats", "tflite", "onnx", "--outdir", str(out)])
    capsys.readouterr()
    assert code == 1
    names = _files(out)
    assert "geomodel.onnx" in names
    assert not [n for n in names if "tflite" in n], names  # no partial artifact, no golden file for it
    v = json.loads((out / "validation.json").read_text())
    assert v["artifacts"]["tflite"]["status"] == "error"
    assert "converter crashed" in v["artifacts"]["tflite"]["error"]
    assert v["artifacts"]["onnx"]["status"] == "passed"


@pytest.mark.slow
def test_missing_optional_package_is_named(geo_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    out = tmp_path / "out"
    code = main(["export", str(geo_checkpoint), "--formats", "onnx", "tflite", "--outdir", str(out)])
    printed = capsys.readouterr().out
    v = json.loads((out / "validation.json").read_text())
    assert code == 1
    assert "onnxruntime" in v["artifacts"]["onnx"]["error"] and "pip install" in v["artifacts"]["onnx"]["error"]
    assert v["artifacts"]["tflite"]["status"] == "passed"
    assert not (out / "geomodel.onnx").exists()
    # the dynamic-batch TFLite route needs ONNX Runtime: litert-torch's fixed batch, said where users look
    tfl = next(a for a in json.loads((out / "manifest.json").read_text())["artifacts"] if a["format"] == "tflite")
    assert tfl["notes"]["dynamic_batch"] is False and tfl["batch"].startswith("FIXED batch 1")
    assert "refused" in tfl["notes"]["resize_check"]["7"]["note"] and tfl["notes"]["resize_check"]["1"]["passed"]
    assert "tflite: FIXED batch 1" in printed and "Fixed-batch artifacts" in (out / "report.html").read_text()

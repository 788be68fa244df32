"""A user's own PyTorch model class (not part of edgeport) exports to every format and passes, through
the factory route and through a torch.export ``.pt2`` file, with ``--wrapper geo`` or the user's wrapper."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from edgeport.cli.main import main
from edgeport.exporters import FORMATS
from edgeport.families import FAMILIES
from tests.pipeline.user_models_src import SOURCE

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CONFIG = {"n_species": 24, "hidden": 48, "harmonics": 4}


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A folder holding the user's module, made the current directory (the CLI finds the module from there)."""
    (tmp_path / "my_range_models.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("my_range_models", None)


def _import_user_module():
    """The test's own copy of the user's module, loaded from the file (not through sys.path, so the CLI's
    lookup from the current directory is what the export exercises)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_test_copy_of_user_models", Path.cwd() / "my_range_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _realistic_coords(path, n=160, seed=3):
    feeds = FAMILIES.get("geo").reference_inputs(n=n, seed=seed)
    np.savez(path, coords=feeds["input"])


def _export(capsys, *argv) -> tuple[int, dict]:
    out = argv[argv.index("--outdir") + 1]
    code = main(["export", *map(str, argv)])
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    return code, manifest | {"_printed": printed}


def _all_formats_passed(manifest):
    status = {a["format"]: a["status"] for a in manifest["artifacts"]}
    assert set(status) == set(FORMATS.names()), status
    failed = {a["format"]: a["error"] or a["validation"]["failures"] for a in manifest["artifacts"]
              if a["status"] != "passed"}
    assert not failed, failed
    for a in manifest["artifacts"]:  # every artifact was compared with the source on real numbers
        outs = a["validation"]["outputs"]
        assert outs and all(o["rows"] >= 100 for o in outs.values())


def _save_checkpoint(user_dir, builder):
    import torch

    model = getattr(_import_user_module(), builder)(**CONFIG)
    path = user_dir / "range.pt"
    torch.save({"model_config": CONFIG, "model_state_dict": model.state_dict()}, path)
    return path


def test_factory_route_with_geo_wrapper(user_dir, capsys):
    ckpt = _save_checkpoint(user_dir, "build")
    code, m = _export(capsys, ckpt, "--factory", "my_range_models:build", "--wrapper", "geo",
                      "--formats", "all", "--outdir", user_dir / "out")
    assert code == 0, m["_printed"]
    _all_formats_passed(m)
    assert m["inputs"] == [{"name": "input", "shape": [None, 3], "dtype": "float32"}]
    assert m["outputs"][0]["name"] == "probabilities" and m["outputs"][0]["shape"] == [None, 24]
    assert m["keep_float"] == []  # the family's "model.encoding" is not a module of this model: not claimed
    _tflite_resizes_to_batch_7(user_dir / "out", m)


def _tflite_resizes_to_batch_7(out, manifest):
    """Each TFLite artifact, resized to batch 7, gives its batch-1 rows, and they pass the gate against the
    source outputs stored in the folder's golden reference file."""
    from edgeport.export import load_golden
    from edgeport.exporters import gate_for
    from edgeport.validation import compare
    from tests._support.resize import resized_rows

    tflite = [a for a in manifest["artifacts"] if a["file"].endswith(".tflite")]
    assert {a["format"] for a in tflite} == {"tflite", "tflite_fp16", "tflite_int8", "tflite_int8_full"}
    for a in tflite:
        assert a["notes"]["dynamic_batch"] is True and all(c["passed"] for c in a["notes"]["resize_check"].values())
        golden = load_golden(out / a["golden_vectors"])
        at7 = resized_rows(out / a["file"], golden["inputs"], a["format"])
        cmp = compare(golden["reference"], at7, gate_for(a["format"]))
        assert cmp.passed, (a["format"], cmp.failures)


def test_factory_route_with_own_wrapper(user_dir, capsys):
    ckpt = _save_checkpoint(user_dir, "build_packed")
    _realistic_coords(user_dir / "coords.npz")
    _realistic_coords(user_dir / "calib.npz", n=256, seed=11)
    code, m = _export(capsys, ckpt, "--factory", "my_range_models:build_packed",
                      "--wrapper", "my_range_models:wrap_packed", "--reference-inputs", user_dir / "coords.npz",
                      "--calibration-inputs", user_dir / "calib.npz", "--formats", "all", "--outdir", user_dir / "out")
    assert code == 0, m["_printed"]
    _all_formats_passed(m)
    assert [t["name"] for t in m["inputs"]] == ["coords"] and [t["name"] for t in m["outputs"]] == ["scores"]


def test_pt2_route_with_geo_wrapper(user_dir, capsys):
    import torch

    model = _import_user_module().build(**CONFIG).eval()
    x = torch.tensor([10.0, -20.0]), torch.tensor([30.0, 100.0]), torch.tensor([5.0, 40.0])
    batch = torch.export.Dim("batch", min=1)
    ep = torch.export.export(model, x, dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))
    torch.export.save(ep, user_dir / "range.pt2")
    code, m = _export(capsys, user_dir / "range.pt2", "--wrapper", "geo", "--formats", "all",
                      "--outdir", user_dir / "out")
    assert code == 0, m["_printed"]
    _all_formats_passed(m)


def test_pt2_route_with_own_wrapper(user_dir, capsys):
    import torch

    mod = _import_user_module()
    wrapped = mod.wrap_packed(mod.build_packed(**CONFIG)).eval()
    batch = torch.export.Dim("batch", min=1)
    ep = torch.export.export(wrapped, (torch.zeros(4, 3),), dynamic_shapes=({0: batch},))
    torch.export.save(ep, user_dir / "packed.pt2")
    _realistic_coords(user_dir / "coords.npz")
    _realistic_coords(user_dir / "calib.npz", n=256, seed=11)
    code, m = _export(capsys, user_dir / "packed.pt2", "--reference-inputs", user_dir / "coords.npz",
                      "--calibration-inputs", user_dir / "calib.npz", "--formats", "all", "--outdir", user_dir / "out")
    assert code == 0, m["_printed"]
    _all_formats_passed(m)
    assert [t["name"] for t in m["inputs"]] == ["coords"] and m["inputs"][0]["shape"] == [None, 3]


def test_pt2_with_a_fixed_batch_is_refused_with_the_fix(user_dir, capsys):
    import torch

    model = _import_user_module().build(**CONFIG).eval()
    x = torch.tensor([10.0, -20.0]), torch.tensor([30.0, 100.0]), torch.tensor([5.0, 40.0])
    torch.export.save(torch.export.export(model, x), user_dir / "fixed.pt2")
    code = main(["export", str(user_dir / "fixed.pt2"), "--wrapper", "geo", "--formats", "onnx",
                 "--outdir", str(user_dir / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "fixed batch of 2" in err and "Dim('batch')" in err
    assert not (user_dir / "out").exists() or not any((user_dir / "out").iterdir())

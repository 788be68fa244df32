"""The deliverables folder follows edgeport's write rule (docs/reliability.md): earlier outputs are kept without
--force, an interrupted export leaves the earlier set whole, symlinks are replaced and never written through,
flags the export does not read are refused, and ``ood fit`` refits a folder's detector as one staged set."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeport.fileio import STAGING, sha256_path

pytestmark = pytest.mark.slow


def _tree(d):
    """{relative name: sha256} of every file (and link) under ``d``, hidden ones included."""
    return {str(p.relative_to(d)): (f"-> {p.readlink()}" if p.is_symlink() else sha256_path(p))
            for p in sorted(d.rglob("*")) if p.is_file() or p.is_symlink()}


def _export(ck, imgs, out, **kw):
    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.deliverables import (
        HierarchyConfig,
        export_deliverables,
    )

    return export_deliverables(load_hierarchy(ck), HierarchyConfig(formats=("onnx",), outdir=out, data_path_train=imgs,
                                                                   latency_repeats=1, **kw))


def test_earlier_folder_refused_without_force_and_left_byte_identical(hierarchy_data, hierarchy_export, tmp_path,
                                                                     capsys):
    from edgeport.cli.main import main

    ck, imgs = hierarchy_data
    d = tmp_path / "copy"
    shutil.copytree(hierarchy_export, d)
    before = _tree(d)
    assert main(["export", str(ck), "--family", "hierarchy", "--formats", "onnx", "--data-path-train", str(imgs),
                 "--outdir", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds earlier exports" in err[0] and "--force" in err[0]
    assert _tree(d) == before


def test_interrupted_export_leaves_the_earlier_set_whole(hierarchy_data, hierarchy_export, tmp_path, monkeypatch):
    from edgeport.families.hierarchy import deliverables

    ck, imgs = hierarchy_data
    d = tmp_path / "copy"
    shutil.copytree(hierarchy_export, d)
    before = _tree(d)
    staged = []

    def interrupted(*a, **k):  # after every model of the run is written (staged), before the lists and reports
        staged.extend(p.name for p in (d / STAGING).rglob("*.onnx"))
        raise KeyboardInterrupt

    monkeypatch.setattr(deliverables, "_verify", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _export(ck, imgs, d, force=True)
    assert "species.onnx" in staged and "disease-heads-fused.onnx" in staged  # the run had written its new files
    after = _tree(d)
    assert after == before  # every earlier file as it was, nothing added, not even staging
    assert not (d / STAGING).exists()


def test_symlinks_replaced_never_written_through_and_stale_staging_cleaned(hierarchy_data, tmp_path):
    import torch

    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.images import (
        Preprocessing,
        list_images,
        load_images,
    )
    from edgeport.runtimes.onnxruntime import OrtRunner

    ck, imgs = hierarchy_data
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere.onnx"
    target.write_bytes(b"not yours to overwrite")
    (out / "species.onnx").symlink_to(target)
    (out / STAGING / "999999999-dead").mkdir(parents=True)  # what a killed run leaves behind
    (out / STAGING / "999999999-dead" / "species.onnx").write_bytes(b"half")
    with pytest.raises(Exception, match="symlinks"):
        _export(ck, imgs, out)  # without --force a link in an output's place is refused
    res = _export(ck, imgs, out, force=True)
    assert res.passed, [(a.format, a.error) for a in res.artifacts if not a.passed]
    assert target.read_bytes() == b"not yours to overwrite"
    assert not (out / "species.onnx").is_symlink()
    assert not (out / STAGING).exists()
    assert (out / "disease-heads").is_dir() and not any(p.name.startswith(".") for p in out.rglob("*"))
    # the file now in place is the species model: numbers against PyTorch
    src = load_hierarchy(ck)
    x = load_images(list_images(imgs)[:6], Preprocessing(size=src.image_size))
    with torch.no_grad():
        logits, emb = (t.numpy() for t in src.model(torch.from_numpy(x)))
    got = OrtRunner.open(out / "species.onnx").infer({"input": x})
    np.testing.assert_allclose(got["species_logits"], logits, atol=1e-4)
    np.testing.assert_allclose(got["embedding"], emb, atol=1e-4)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {a["file"] for a in manifest["artifacts"] if a["file"]} >= {"species.onnx", "disease-heads-fused.onnx"}
    assert manifest["metadata_sha256"] == sha256_path(out / "onnx-metadata.json")
    meta = json.loads((out / "onnx-metadata.json").read_text())
    assert all(not k.startswith(".") and meta["sha256"][k] == sha256_path(out / k) for k in meta["sha256"])


@pytest.mark.parametrize("extra, flag", [
    (["--batch-validate", "3"], "--batch-validate"),
    (["--reference-inputs", "r.npz"], "--reference-inputs"),
    (["--calibration-inputs", "c.npz"], "--calibration-inputs"),
    (["--golden-rows", "8"], "--golden-rows"),
    (["--wrapper", "logits"], "--wrapper"),
    (["--input-shape", "input=1,3,32,32"], "--input-shape"),
    (["--tflite-route", "savedmodel"], "--tflite-route"),
    (["--fp16-io"], "--fp16-io"),
    (["--gate", "onnx.bogus=1"], "unknown metric"),
    (["--gate", "tflite.min_cosine=0.9"], "ONNX only"),
    (["--opset", "3"], "--opset must be at least 7"),
    (["--ood-percentile", "0"], "--ood-percentile"),
])
def test_flags_the_export_does_not_honour_are_refused(hierarchy_data, tmp_path, capsys, extra, flag):
    from edgeport.cli.main import main

    ck, imgs = hierarchy_data
    out = tmp_path / "out"
    assert main(["export", str(ck), "--family", "hierarchy", "--data-path-train", str(imgs), "--outdir", str(out),
                 *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err
    assert not out.exists()


def test_ood_fit_refits_in_place_as_one_set(hierarchy_export, tmp_path, monkeypatch):
    from edgeport.families.hierarchy import ood
    from edgeport.families.hierarchy.deliverables import refit_ood

    d = tmp_path / "copy"
    shutil.copytree(hierarchy_export, d)
    before = _tree(d)
    dim = json.loads((d / "disease-heads-list.json").read_text())["embedding_dim"]
    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(4).normal(size=(30, dim)))
    real_check = ood.check_onnx

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ood, "check_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        refit_ood(d, embeddings=emb, percentile=90)
    assert _tree(d) == before  # the earlier detector, metadata and manifest whole; no staging left
    monkeypatch.setattr(ood, "check_onnx", real_check)
    det, check = refit_ood(d, embeddings=emb, percentile=90)
    assert check["passed"]
    changed = {k for k in before if _tree(d).get(k) != before[k]}
    assert changed == {ood.NPZ, ood.JSON, ood.ONNX, "onnx-metadata.json", "manifest.json"}
    assert set(_tree(d)) == set(before)
    assert json.loads((d / "manifest.json").read_text())["metadata_sha256"] == sha256_path(d / "onnx-metadata.json")
    x = np.load(emb)
    np.testing.assert_allclose(ood.onnx_distance(d, x)[0], det.distance(x), rtol=1e-4)


def test_force_rerun_drops_the_earlier_model_whose_new_one_fails(hierarchy_data, hierarchy_export, tmp_path,
                                                                  monkeypatch):
    from edgeport.families.hierarchy import deliverables

    ck, imgs = hierarchy_data
    d = tmp_path / "copy"
    shutil.copytree(hierarchy_export, d)
    before = _tree(d)
    real = deliverables.get_exporter

    def exporter(fmt):
        def export(handle, **kw):
            if handle.name == "species":
                raise RuntimeError("converter crashed")
            return real(fmt)(handle, **kw)
        return export

    monkeypatch.setattr(deliverables, "get_exporter", exporter)
    res = _export(ck, imgs, d, force=True)
    assert not res.passed
    assert [a.status for a in res.artifacts if a.format == "species/onnx"] == ["error"]
    assert not (d / "species.onnx").exists()  # the earlier FP32 species model went: folder and manifest agree
    assert (d / "species_fp16.onnx").exists() and _tree(d)["species_fp16.onnx"] == before["species_fp16.onnx"]
    assert (d / "disease-heads-fused.onnx").exists() and not (d / STAGING).exists()
    manifest = json.loads((d / "manifest.json").read_text())
    assert all(a["file"] is None or (d / a["file"]).is_file() for a in manifest["artifacts"])

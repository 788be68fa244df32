"""Species + disease deliverables: numbers against the PyTorch model, the fused == per-head contract, the heads
list, checkpoint kinds, the OOD detector and predict, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeport.errors import DataError, SourceError

pytestmark = pytest.mark.slow


def _src(ck):
    from edgeport.families.hierarchy.checkpoint import load_hierarchy

    return load_hierarchy(ck)


def _held_embeddings(src, imgs):
    import torch

    from edgeport.families.hierarchy.images import (
        Preprocessing,
        list_images,
        load_images,
    )

    x = load_images(list_images(imgs)[::4], Preprocessing(size=src.image_size))
    with torch.no_grad():
        logits, emb = src.model(torch.from_numpy(x))
    return x, logits.numpy(), emb.numpy()


def test_species_model_matches_pytorch_with_dynamic_batch(hierarchy_data, hierarchy_export):
    from edgeport.runtimes.onnxruntime import OrtRunner

    src = _src(hierarchy_data[0])
    x, logits, emb = _held_embeddings(src, hierarchy_data[1])
    r = OrtRunner.open(hierarchy_export / "species.onnx")
    assert r.output_names == ("species_logits", "embedding")
    for n in (1, 3, len(x)):
        got = r.infer({"input": x[:n]})
        assert np.abs(got["species_logits"] - logits[:n]).max() < 1e-4
        assert np.abs(got["embedding"] - emb[:n]).max() < 1e-4
    v = json.loads((hierarchy_export / "validation.json").read_text())
    assert v["all_passed"] and v["verification"]["float_vs_pytorch_max_abs_diff"] < 0.01
    for f in ("onnx_int8", "onnx_int8_static"):  # INT8 within 1 point of float on the held-out images
        for task in ("species_top1", "disease_top1"):
            drop = v["verification"]["task_accuracy"]["pytorch"][task] - v["verification"]["task_accuracy"][f][task]
            assert drop <= 0.01
    assert v["verification"]["task_accuracy"]["pytorch"]["species_top1"] >= 0.9  # the fit means something


@pytest.mark.parametrize("fmt", ["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_static"])
def test_fused_equals_per_head_for_every_species(hierarchy_data, hierarchy_export, fmt):
    import torch

    from edgeport.exporters import FORMATS
    from edgeport.families.hierarchy.graphs import PAD_LOGIT
    from edgeport.runtimes.onnxruntime import OrtRunner

    src = _src(hierarchy_data[0])
    _, _, emb = _held_embeddings(src, hierarchy_data[1])
    suffix = FORMATS.get(fmt).suffix
    fused = OrtRunner.open(hierarchy_export / f"disease-heads-fused{suffix}.onnx")
    lst = json.loads((hierarchy_export / "disease-heads-list.json").read_text())
    kmax = max(len(d) for d in src.disease_names.values())
    tol = {"onnx": 1e-5, "onnx_fp16": 1e-5}.get(fmt, 0.05)
    for entry in lst["species"]:
        s, k = entry["name"], entry["n_diseases"]
        out = fused.infer({"embedding": emb, "species_index": np.full(len(emb), entry["id"], np.int64)})
        head = OrtRunner.open(hierarchy_export / entry["head_files"][fmt]).infer({"embedding": emb})["disease_logits"]
        with torch.no_grad():
            ref = src.heads[s](torch.from_numpy(emb)).numpy()
        assert out["disease_logits"].shape == (len(emb), kmax)
        assert np.abs(out["disease_logits"][:, :k] - head).max() <= tol, s
        assert np.abs(head - ref).max() <= (1e-4 if fmt == "onnx" else 0.1), s
        assert np.all(out["disease_logits"][:, k:] == PAD_LOGIT)
        assert np.all(out["valid_count"] == k)


def test_heads_list_order_files_and_metadata(hierarchy_data, hierarchy_export):
    from edgeport.fileio import sha256_path

    src = _src(hierarchy_data[0])
    lst = json.loads((hierarchy_export / "disease-heads-list.json").read_text())
    assert [e["name"] for e in lst["species"]] == src.class_names
    assert [e["id"] for e in lst["species"]] == list(range(len(src.class_names)))
    assert [e["diseases"] for e in lst["species"]] == [src.disease_names[s] for s in src.class_names]
    assert any(e["n_diseases"] == 1 for e in lst["species"])
    meta = json.loads((hierarchy_export / "onnx-metadata.json").read_text())
    assert meta["preprocessing"]["size"] == src.image_size and len(meta["preprocessing"]["mean"]) == 3
    for e in lst["species"]:
        for f in e["head_files"].values():
            assert meta["sha256"][f] == sha256_path(hierarchy_export / f)
    assert "ood-detector.onnx" in meta["sha256"] and "species_int8.onnx" in meta["sha256"]


def test_lightning_and_plain_state_dict_checkpoints(hierarchy_data, tmp_path):
    import torch

    from edgeport.families.hierarchy.checkpoint import load_hierarchy

    ck, imgs = hierarchy_data
    src = _src(ck)
    obj = torch.load(ck, weights_only=True)
    x, logits, _ = _held_embeddings(src, imgs)
    light = tmp_path / "epoch=10-best.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in obj["model_state_dict"].items()},
                "hyper_parameters": {**obj["model_config"]}}, light)
    plain = tmp_path / "weights.pt"
    torch.save(obj["model_state_dict"], plain)
    (tmp_path / "labels.txt").write_text("\n".join(src.class_names) + "\n")
    (tmp_path / "diseases.json").write_text(json.dumps(src.disease_names))
    a = load_hierarchy(light)
    b = load_hierarchy(plain, factory="edgeport.families.hierarchy.model:build_model", labels=tmp_path / "labels.txt",
                       disease_labels=tmp_path / "diseases.json", image_size=32)
    assert a.kind == "lightning" and b.kind == "state_dict"
    for s in (a, b):
        assert s.class_names == src.class_names and s.image_size == 32
        with torch.no_grad():
            assert np.allclose(s.model(torch.from_numpy(x))[0].numpy(), logits, atol=1e-6)
    with pytest.raises(SourceError, match="--factory"):
        load_hierarchy(plain, labels=tmp_path / "labels.txt", disease_labels=tmp_path / "diseases.json")


def test_head_names_not_in_class_list_refused(hierarchy_data, tmp_path):
    from edgeport.families.hierarchy.checkpoint import load_hierarchy

    ck, _ = hierarchy_data
    src = _src(ck)
    (tmp_path / "labels.txt").write_text("\n".join(["rose", *src.class_names[1:]]) + "\n")
    with pytest.raises(SourceError, match=src.class_names[0]):
        load_hierarchy(ck, labels=tmp_path / "labels.txt")
    from edgeport.families.hierarchy.model import build_model

    m = build_model(class_names=["Tomato", "tomato"], disease_names={"Tomato": ["a"], "tomato": ["b"]})
    with pytest.raises(SourceError, match="would both write"):
        load_hierarchy(model=m, class_names=["Tomato", "tomato"], disease_names={"Tomato": ["a"], "tomato": ["b"]})


def test_ood_fit_save_load_and_onnx_matches_numpy(tmp_path):
    from edgeport.families.hierarchy import ood

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(20, 64)) * rng.uniform(0.5, 2, 64)  # fewer images than dimensions
    det = ood.fit_ood(emb, percentile=90)
    assert det.threshold == pytest.approx(np.percentile(det.distance(emb), 90)) and det.threshold != 90.0
    det.save(tmp_path)
    back = ood.load_ood(tmp_path, embedding_dim=64)
    probe = np.concatenate([emb, rng.normal(size=(10, 64)) * 5])
    assert np.allclose(back.distance(probe), det.distance(probe))
    check = ood.check_onnx(tmp_path, back, probe)
    assert check["passed"] and check["max_rel_diff"] <= 1e-4 and check["flag_agreement"] == 1.0
    assert not any(p.suffix == ".pkl" for p in tmp_path.iterdir())
    with pytest.raises(SourceError, match="64-dim"):
        ood.load_ood(tmp_path, embedding_dim=768)


def test_predict_on_a_folder_fused_and_per_file(hierarchy_data, hierarchy_export, capsys):
    from edgeport.cli.main import main
    from edgeport.families.hierarchy.predict import Predictor

    _, imgs = hierarchy_data
    folder = imgs / "basil"
    fused = Predictor(hierarchy_export, precision="onnx")
    per = Predictor(hierarchy_export, precision="onnx", heads="per-file")
    a, b = fused.predict(folder), per.predict(folder)
    assert len(a) == len(list(folder.rglob("*.png")))
    assert sum(p.species[0][0] == "basil" for p in a) >= 0.9 * len(a)
    for p, q in zip(a, b, strict=True):
        assert p.diseases[0][0] == q.diseases[0][0] and abs(p.diseases[0][1] - q.diseases[0][1]) < 1e-5
    assert main(["predict", "--model-dir", str(hierarchy_export), "--json", str(folder)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["predictions"]) == len(a) and out["precision"] == "onnx_int8"


def test_bad_images_converted_or_refused(hierarchy_export, tmp_path):
    from PIL import Image

    from edgeport.cli.main import main
    from edgeport.families.hierarchy.predict import Predictor

    Image.new("RGBA", (40, 30), (0, 200, 0, 128)).save(tmp_path / "rgba.png")
    Image.new("L", (50, 50), 120).save(tmp_path / "gray.png")
    Image.new("RGB", (10, 10), (0, 150, 0)).save(tmp_path / "small.jpg")
    pred = Predictor(hierarchy_export)
    assert len(pred.predict([tmp_path / "rgba.png", tmp_path / "gray.png", tmp_path / "small.jpg"])) == 3
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    with pytest.raises(DataError, match="4x4"):
        pred.predict([tmp_path / "tiny.png"])
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="corrupt.jpg"):
        pred.predict([tmp_path / "corrupt.jpg"])
    assert main(["predict", "--model-dir", str(hierarchy_export), str(tmp_path / "corrupt.jpg")]) == 2


def test_heads_list_missing_file_and_foreign_ood_refused(hierarchy_export, tmp_path):
    from edgeport.families.hierarchy import ood
    from edgeport.families.hierarchy.predict import Predictor

    d = tmp_path / "copy"
    shutil.copytree(hierarchy_export, d)
    lst = json.loads((d / "disease-heads-list.json").read_text())
    victim = lst["species"][1]["head_files"]["onnx"]
    (d / victim).unlink()
    with pytest.raises(SourceError, match=victim.split("/")[-1]):
        Predictor(d, precision="onnx", heads="per-file")
    ood.fit_ood(np.random.default_rng(1).normal(size=(30, 8))).save(d)
    with pytest.raises(SourceError, match="8-dim"):
        Predictor(d, precision="onnx")


def test_ood_fit_cli_refits_from_embeddings(hierarchy_export, tmp_path):
    from edgeport.cli.main import main
    from edgeport.fileio import sha256_path

    d = tmp_path / "copy"
    shutil.copytree(hierarchy_export, d)
    dim = json.loads((d / "disease-heads-list.json").read_text())["embedding_dim"]
    np.save(tmp_path / "emb.npy", np.random.default_rng(2).normal(size=(40, dim)))
    assert main(["ood", "fit", "--model-dir", str(d), "--embeddings", str(tmp_path / "emb.npy"),
                 "--ood-percentile", "99"]) == 0
    meta = json.loads((d / "onnx-metadata.json").read_text())
    assert meta["sha256"]["ood-detector.npz"] == sha256_path(d / "ood-detector.npz")
    assert json.loads((d / "ood-detector.json").read_text())["percentile"] == 99.0
    np.save(tmp_path / "bad.npy", np.zeros((5, dim + 1)))
    assert main(["ood", "fit", "--model-dir", str(d), "--embeddings", str(tmp_path / "bad.npy")]) == 2


def test_export_cli_refuses_bad_input_before_work(hierarchy_data, tmp_path, capsys):
    from edgeport.cli.main import main

    ck, imgs = hierarchy_data
    out = tmp_path / "out"
    assert main(["export", str(ck), "--family", "hierarchy", "--outdir", str(out)]) == 2
    assert "--data-path-train" in capsys.readouterr().err
    assert main(["export", str(ck), "--family", "hierarchy", "--formats", "tflite", "--data-path-train", str(imgs),
                 "--outdir", str(out)]) == 2
    assert "ONNX only" in capsys.readouterr().err
    (tmp_path / "labels.txt").write_text("rose\nfern\noak\n")
    assert main(["export", str(ck), "--family", "hierarchy", "--labels", str(tmp_path / "labels.txt"),
                 "--data-path-train", str(imgs), "--outdir", str(out)]) == 2
    assert "not in the class list" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())

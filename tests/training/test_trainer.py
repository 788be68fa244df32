"""Training end to end on tiny synthetic audio: outputs, save/load, BN statistics, resume, seeds, modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("audio")]


def _inputs(cfg, data_root, n=24):
    from edgeport.audio.dataset import scan_dataset
    from edgeport.families.audio.contract import model_input_from_audio

    ds = scan_dataset(data_root)
    idx = np.linspace(0, len(ds) - 1, n).astype(int)
    return np.concatenate([model_input_from_audio(ds.files[i], cfg, max_chunks=1) for i in idx])


def test_outputs_written_and_loadable(tiny_run):
    from edgeport.families.audio.loading import load_trained_model

    for key in ("model", "config", "labels", "history", "curves", "state"):
        assert tiny_run.paths[key].is_file(), key
    cfg_d = json.loads(tiny_run.paths["config"].read_text())
    for key in ("sample_rate", "num_mels", "spec_width", "fft_length", "chunk_duration", "hop_length",
                "audio_frontend", "mag_scale", "embeddings_size", "alpha", "depth_multiplier", "num_classes",
                "class_names", "frontend_trainable"):
        assert key in cfg_d
    assert cfg_d["class_names"] == tiny_run.class_names
    assert tiny_run.paths["labels"].read_text().split() == tiny_run.class_names
    model, _cfg = load_trained_model(tiny_run.model_path)
    assert model.get_layer("frontend_normalize") is not None
    assert model.get_layer("sigmoid").input is model.get_layer("logits").output
    state = json.loads(tiny_run.paths["state"].read_text())
    assert state["completed"] and state["epoch"] == tiny_run.epochs_run
    bn = state["batchnorm_recalibration"]  # what the re-estimation did to the validation figures, on record
    assert bn == tiny_run.batchnorm and bn["batches"] > 0
    assert bn["val_roc_auc_after"] == pytest.approx(tiny_run.val_roc_auc)


def test_save_load_identical_and_outputs_vary(tiny_run, tiny_data):
    """Reloaded model gives identical outputs; inference outputs vary across clips (BN statistics sane)."""
    from edgeport.families.audio.loading import load_trained_model

    model, cfg = load_trained_model(tiny_run.model_path)
    x = _inputs(cfg, tiny_data)
    p1 = np.asarray(model(x, training=False))
    model2, _ = load_trained_model(tiny_run.model_path)
    p2 = np.asarray(model2(x, training=False))
    np.testing.assert_array_equal(p1, p2)
    top = p1.max(axis=1)
    assert np.std(top) >= 0.05, f"top-class probability barely varies across clips: std {np.std(top):.4f}"
    assert tiny_run.val_roc_auc > 0.6


def test_resume_that_never_beats_the_best_keeps_the_best_model(tmp_path, small_data, make_config):
    """A resumed run whose epochs all miss the stored best validation loss: the model in place (the best one)
    stays in place through every epoch's commit and is what the run ends with, scored as the state says."""
    import numpy as np

    from edgeport.families.audio.loading import load_keras_model
    from edgeport.training.trainer import train

    ckpt = tmp_path / "b.keras"
    kw = {"patience": 50, "small_body": True}
    r1 = train(make_config(small_data, ckpt, epochs=2, **kw))
    best_weights = load_keras_model(ckpt).get_weights()
    state_file = r1.paths["state"]
    state = json.loads(state_file.read_text())
    state["best_val_loss"] = -1.0  # no epoch of the resumed run can beat it
    state_file.write_text(json.dumps(state))
    seen = []
    r2 = train(make_config(small_data, ckpt, epochs=4, resume=True, **kw),
               on_epoch=lambda row: seen.append(ckpt.is_file()))
    assert seen == [True, True], "the best model left its place during the resumed run"
    assert r2.best_epoch == state["best_epoch"]
    assert all(np.array_equal(a, b) for a, b in zip(load_keras_model(ckpt).get_weights(), best_weights))
    assert r2.val_roc_auc == pytest.approx(state["best_val_roc_auc"], abs=1e-6)


def test_resume_continues_epoch_and_learning_rate(tmp_path, small_data, make_config):
    import keras

    from edgeport.training.trainer import read_history, train

    ckpt = tmp_path / "r.keras"
    r1 = train(make_config(small_data, ckpt, epochs=2, patience=50, bn_recalibration_batches=0, small_body=True))
    state1 = json.loads(r1.paths["state"].read_text())
    steps = state1["steps_per_epoch"]
    assert state1["epoch"] == 2 and state1["step"] == 2 * steps
    r2 = train(make_config(small_data, ckpt, epochs=4, patience=50, resume=True, bn_recalibration_batches=0,
                                small_body=True))
    state2 = json.loads(r2.paths["state"].read_text())
    assert state2["epoch"] == 4 and state2["step"] == 4 * steps
    hist = read_history(r2.paths["history"])
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    # epoch 3 starts at the stored step on a cosine recomputed over the new total (4 epochs)
    sched = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=4 * steps, alpha=1e-3)
    assert hist[2]["learning_rate"] == pytest.approx(float(sched(2 * steps)), rel=1e-5)
    sched_old = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=2 * steps, alpha=1e-3)
    assert hist[2]["learning_rate"] > float(sched_old(2 * steps)) * 10


def test_fixed_seed_reproduces_run(tmp_path, small_data, make_config):
    from edgeport.families.audio.loading import load_keras_model
    from edgeport.training.trainer import train

    ws = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        r = train(make_config(small_data, tmp_path / name / "m.keras", epochs=1, seed=seed,
                              bn_recalibration_batches=0, small_body=True))
        ws.append(load_keras_model(r.model_path).get_weights())
    for a, b in zip(ws[0], ws[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(ws[0], ws[2], strict=True))


def test_linear_probe_leaves_backbone_unchanged(tiny_run, tiny_data, tmp_path, make_config):
    import shutil

    from edgeport.families.audio.loading import load_trained_model
    from edgeport.training.trainer import train

    # a new class set: two of the species under new names, no noise
    new = tmp_path / "new"
    for i, src in enumerate(sorted(p for p in tiny_data.iterdir() if p.name.startswith("sp"))[:2]):
        shutil.copytree(src, new / f"bird{i}")
    base, _base_cfg = load_trained_model(tiny_run.model_path)
    r = train(make_config(new, tiny_run.model_path, epochs=2, linear_probe=True, learning_rate=1e-2))
    assert r.model_path.name == "tiny_probe.keras"
    probe, probe_cfg = load_trained_model(r.model_path)
    assert probe_cfg.class_names == ("bird0", "bird1") and probe.output_shape == (None, 2)
    assert r.paths["labels"].read_text().split() == ["bird0", "bird1"]
    n_checked = 0
    for layer in base.layers:
        if layer.name in ("logits", "sigmoid", "dropout") or not layer.weights:
            continue
        for a, b in zip(layer.get_weights(), probe.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
            n_checked += 1
    assert n_checked > 50
    assert not np.allclose(probe.get_layer("logits").get_weights()[0][:, :1], 0)


def test_qat_refuses_without_pretrained_model(tmp_path, small_data, make_config):
    from edgeport.errors import ConfigError
    from edgeport.training.trainer import train

    with pytest.raises(ConfigError, match="train without --qat first"):
        train(make_config(small_data, tmp_path / "none.keras", qat=True))


def test_qat_fine_tune_saves_clean_model(tiny_run, tiny_data, make_config):
    import keras

    from edgeport.families.audio.loading import load_trained_model
    from edgeport.training.trainer import train

    r = train(make_config(tiny_data, tiny_run.model_path, epochs=1, qat=True, learning_rate=1e-4))
    assert r.model_path.name == "tiny_qat.keras" and r.paths["config"].is_file()
    model, _cfg = load_trained_model(r.model_path)
    types = {type(la).__name__ for la in model._flatten_layers(include_self=False)}
    assert not any("Quant" in t for t in types)
    base, _ = load_trained_model(tiny_run.model_path)
    for la in base.layers:  # BatchNorm statistics frozen during QAT
        if isinstance(la, keras.layers.BatchNormalization):
            np.testing.assert_array_equal(la.moving_mean.numpy(), model.get_layer(la.name).moving_mean.numpy())


def test_interrupt_leaves_loadable_checkpoint_and_resumable_state(tmp_path, small_data, make_config, monkeypatch):
    from edgeport.families.audio.loading import load_trained_model
    from edgeport.training import data as D
    from edgeport.training.trainer import train

    real = D.ChunkStream.batches
    calls = {"n": 0}

    def batches(self, batch_size, n_batches):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C during the second epoch
            raise KeyboardInterrupt
        yield from real(self, batch_size, n_batches)

    monkeypatch.setattr(D.ChunkStream, "batches", batches)
    ckpt = tmp_path / "i.keras"
    with pytest.raises(KeyboardInterrupt):
        train(make_config(small_data, ckpt, epochs=3, patience=50, small_body=True))
    state = json.loads((tmp_path / "i_train_state.json").read_text())
    assert state["interrupted"] and state["epoch"] == 1 and not state["completed"]
    model, _ = load_trained_model(ckpt)
    assert model.output_shape[-1] == 3
    assert not list(tmp_path.glob(".*partial*"))
    monkeypatch.setattr(D.ChunkStream, "batches", real)
    r = train(make_config(small_data, ckpt, epochs=3, patience=50, resume=True, small_body=True))
    assert json.loads(r.paths["state"].read_text())["epoch"] == 3 and r.history[0]["epoch"] == 1

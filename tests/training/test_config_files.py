"""``TrainConfig`` holds the model's options in one ``AudioModelConfig``; files written before that still load."""

from __future__ import annotations

import json

import pytest

#: ``train_config`` of a study's best_params.json as edgeport wrote it when TrainConfig was flat
OLD_TRAIN_CONFIG = json.loads(
    '{"data_path_train": "birds", "checkpoint_path": "ck/m.keras", "max_samples": null, "upsample_ratio": 0.5, '
    '"val_split": 0.2, "max_duration": 60.0, "max_chunks_per_file": 3, "num_workers": 0, "reservoir_size": 512, '
    '"cache_dir": null, "cache_memory_mb": 1024.0, "sample_rate": 24000, "num_mels": 32, "spec_width": 256, '
    '"fft_length": 512, "chunk_duration": 3.0, "audio_frontend": "mfcc", "mag_scale": "none", "n_mfcc": 16, '
    '"frontend_trainable": false, "model": "dscnn", "embeddings_size": 256, "alpha": 1.0, "depth_multiplier": 1, '
    '"use_se": false, "se_reduction": 8, "use_inverted_residual": true, "expansion_factor": 2, '
    '"use_attention_pooling": false, "dropout": 0.5, "mixup_alpha": 0.0, "mixup_probability": 0.25, '
    '"spec_augment": true, "freq_mask_max": 8, "time_mask_max": 25, "optimizer": "adam", "weight_decay": 0.0, '
    '"loss": "auto", "focal_gamma": 2.0, "label_smoothing": 0.1, "grad_clip": 1.0, "class_weights": true, '
    '"mixed_precision": false, "batch_size": 32, "epochs": 7, "learning_rate": 0.001, "patience": 10, '
    '"steps_per_epoch": null, "seed": 42, "resume": false, "force": false, "qat": false, "linear_probe": false, '
    '"bn_recalibration_batches": 16, "progress": true}')

#: X_model_config.json written by that version for the same options and classes a, b
OLD_MODEL_CONFIG = json.loads(
    '{"sample_rate": 24000, "num_mels": 32, "spec_width": 256, "fft_length": 512, "chunk_duration": 3.0, '
    '"audio_frontend": "mfcc", "mag_scale": "none", "embeddings_size": 256, "alpha": 1.0, "depth_multiplier": 1, '
    '"num_classes": 2, "class_names": ["a", "b"], "frontend_trainable": false, "n_mfcc": 16, "use_se": false, '
    '"se_reduction": 8, "use_inverted_residual": true, "expansion_factor": 2, "use_attention_pooling": false, '
    '"dropout": 0.5, "model": "dscnn", "input_scaling": "peak", "pad_bins_in_graph": false, "input_rank": 4, '
    '"sigmoid_in_graph": null, "hop_length": 281, "input_shape": [16, 256, 1], '
    '"layer_names": {"normalize": null, "logits": "logits", "sigmoid": "sigmoid"}}')

#: X_train_state.json of an interrupted run of that version
OLD_STATE = {"epoch": 3, "step": 12, "epochs_total": 7, "steps_per_epoch": 4, "learning_rate": 0.0005,
             "best_val_loss": 0.41, "best_val_roc_auc": 0.8, "best_epoch": 2, "wait": 1, "mode": "train",
             "completed": False, "interrupted": True, "seed": 42, "model": "m.keras",
             "batchnorm_recalibration": {"epoch": 2, "batches": 4}}


def test_model_options_live_in_one_audio_model_config():
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.training.config import MODEL_OPTIONS, TrainConfig

    c = TrainConfig(data_path_train="birds", num_mels=32, dropout=0.2, epochs=3)
    assert isinstance(c.audio, AudioModelConfig)
    assert (c.audio.num_mels, c.audio.dropout, c.epochs) == (32, 0.2, 3)
    assert not hasattr(c, "num_mels")  # declared once, in AudioModelConfig
    assert c.audio == AudioModelConfig(num_mels=32, dropout=0.2)
    assert "num_classes" not in MODEL_OPTIONS and {"num_mels", "model", "use_se"} <= MODEL_OPTIONS
    given = TrainConfig(data_path_train="birds", audio=c.audio, alpha=0.5)
    assert (given.audio.num_mels, given.audio.alpha) == (32, 0.5)
    with pytest.raises(TypeError, match="num_melz"):
        TrainConfig(data_path_train="birds", num_melz=3)


def test_old_train_config_json_loads_unchanged():
    from edgeport.training.config import TrainConfig

    c = TrainConfig.from_dict(OLD_TRAIN_CONFIG)
    assert c.to_dict() == OLD_TRAIN_CONFIG
    assert (c.audio.audio_frontend, c.audio.n_mfcc, c.audio.use_se, c.epochs) == ("mfcc", 16, False, 7)


def test_old_model_config_and_state_files_still_load(tmp_path):
    from edgeport.families.audio.model_config import read_model_config
    from edgeport.training.config import TrainConfig
    from edgeport.training.trainer import _Best, _resume_state, output_paths

    c = TrainConfig.from_dict({**OLD_TRAIN_CONFIG, "checkpoint_path": str(tmp_path / "m.keras"), "resume": True})
    out = output_paths(c.checkpoint)
    out["config"].write_text(json.dumps(OLD_MODEL_CONFIG))
    out["state"].write_text(json.dumps(OLD_STATE))
    out["model"].write_bytes(b"")
    # the run these options describe is the one the old file holds (what --resume checks)
    assert read_model_config(out["config"]) == c.audio.replace(num_classes=2, class_names=("a", "b"))
    state = _resume_state(c, out)
    assert state == OLD_STATE
    best = _Best.from_state(state, int(state["epoch"]))
    assert (best.loss, best.roc_auc, best.epoch, best.wait, best.batchnorm) == (0.41, 0.8, 2, 1,
                                                                                {"epoch": 2, "batches": 4})
    fresh = _Best.from_state({"epoch": 5, "best_val_loss": None}, 5)  # an infinite loss was written as null
    assert (fresh.loss, fresh.epoch, fresh.wait) == (float("inf"), 5, 0)

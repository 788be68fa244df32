"""``edgeport train`` arguments map onto TrainConfig with the seed's defaults; bad input gives one clear line."""

from __future__ import annotations

import argparse

import pytest


def _parse(argv):
    from edgeport.cli import train as cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return cli.config_from_args(p.parse_args(argv))


def test_defaults_follow_the_seed():
    from edgeport.training.data import default_num_workers

    c = _parse(["--data-path-train", "d"])
    expected = {"upsample_ratio": 0.5, "sample_rate": 24000, "num_mels": 64, "spec_width": 256, "fft_length": 512,
                    "chunk_duration": 3, "max_duration": 60, "audio_frontend": "hybrid", "mag_scale": "pwl", "embeddings_size": 256,
                    "alpha": 1.0, "depth_multiplier": 1, "frontend_trainable": False, "mixup_alpha": 0.2, "mixup_probability": 0.25,
                    "spec_augment": True, "freq_mask_max": 8, "time_mask_max": 25, "dropout": 0.5, "optimizer": "adam",
                    "weight_decay": 0.0, "loss": "auto", "focal_gamma": 2.0, "label_smoothing": 0.1, "use_se": True,
                    "se_reduction": 8, "use_inverted_residual": True, "expansion_factor": 2, "use_attention_pooling": False,
                    "n_mfcc": 20, "grad_clip": 1.0, "class_weights": True, "mixed_precision": False, "resume": False, "seed": 42,
                    "batch_size": 32, "max_chunks_per_file": 3, "epochs": 50, "learning_rate": 0.001, "val_split": 0.2,
                    "checkpoint_path": "checkpoints/best_model.keras", "qat": False, "linear_probe": False, "max_samples": None,
                    "patience": 10, "num_workers": default_num_workers()}
    for k, v in expected.items():
        assert getattr(c, k) == v, k


def test_negative_flags():
    c = _parse(["--data-path-train", "d", "--no-se", "--no-inverted-residual", "--no-spec-augment",
                "--no-class-weights", "--use-attention-pooling", "--num-workers", "0", "--se-reduction", "4",
                "--expansion-factor", "3", "--loss", "focal", "--optimizer", "adamw", "--weight-decay", "0.01"])
    assert (c.use_se, c.use_inverted_residual, c.spec_augment, c.class_weights) == (False, False, False, False)
    assert (c.use_attention_pooling, c.num_workers, c.se_reduction, c.expansion_factor) == (True, 0, 4, 3)
    assert (c.loss, c.optimizer, c.weight_decay) == ("focal", "adamw", 0.01)


def test_unknown_frontend_refused_by_parser(capsys):
    with pytest.raises(SystemExit) as e:
        _parse(["--data-path-train", "d", "--audio-frontend", "stft"])
    assert e.value.code == 2
    assert "invalid choice: 'stft'" in capsys.readouterr().err


def test_run_reports_empty_folder_as_one_line(tmp_path):
    from edgeport.cli import train as cli
    from edgeport.errors import DataError

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["--data-path-train", str(tmp_path), "--checkpoint-path", str(tmp_path / "m.keras")])
    with pytest.raises(DataError, match="no audio files in class sub-folders"):
        cli.run(args)

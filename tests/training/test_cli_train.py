"""``edgeport train`` arguments map onto TrainConfig with the seed's defaults; bad input gives one clear line."""

from __future__ import annotations

import argparse

import pytest


def _parse(argv):
    from edgeport.cli import train as cli
    from edgeport.cli.args import config_from_args

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return config_from_args(p.parse_args(argv))


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
    options = c.to_dict()
    for k, v in expected.items():
        assert options[k] == v, k


def test_negative_flags():
    c = _parse(["--data-path-train", "d", "--no-se", "--no-inverted-residual", "--no-spec-augment",
                "--no-class-weights", "--use-attention-pooling", "--num-workers", "0", "--se-reduction", "4",
                "--expansion-factor", "3", "--loss", "focal", "--optimizer", "adamw", "--weight-decay", "0.01"])
    assert (c.audio.use_se, c.audio.use_inverted_residual, c.spec_augment, c.class_weights) == (False,) * 4
    assert (c.audio.use_attention_pooling, c.num_workers, c.audio.se_reduction, c.audio.expansion_factor) == (
        True, 0, 4, 3)
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


def _subparser(command):
    from edgeport.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices[command]


@pytest.mark.parametrize("command", ["train", "tune"])
def test_every_multi_word_flag_accepts_the_seed_underscore_spelling(command):
    parser, p = _subparser(command)
    multi = [(a, s) for a in p._actions for s in a.option_strings if s.startswith("--") and "-" in s[2:]]
    assert len(multi) > 40
    base = ["--data-path-train", "d"]
    for action, flag in multi:
        if action.dest in ("help", "data_path_train"):
            continue
        value = [] if action.nargs == 0 else [str(action.choices[0] if action.choices else 3)]
        underscore = "--" + flag[2:].replace("-", "_")
        dashed_ns = parser.parse_args([command, *base, flag, *value])
        underscore_ns = parser.parse_args([command, *base, underscore, *value])
        assert vars(underscore_ns) == vars(dashed_ns), underscore
        if value:
            joined = parser.parse_args([command, *base, f"{underscore}={value[0]}"])
            assert vars(joined) == vars(dashed_ns), underscore
    ns = parser.parse_args([command, "--data_path_train", "birds"])
    assert ns.data_path_train == "birds"


def test_seed_command_line_reads_like_the_dashed_one():
    from edgeport.cli.args import config_from_args
    from edgeport.cli.main import build_parser

    seed = ["train", "--data_path_train", "birds", "--checkpoint_path", "m.keras", "--num_mels", "32",
            "--no_spec_augment", "--mixup_alpha", "0", "--embeddings_size", "64", "--no_class_weights",
            "--max_samples", "5"]
    ours = [a.replace("_", "-") if a.startswith("--") else a for a in seed]
    assert seed != ours
    assert config_from_args(build_parser().parse_args(seed)) == config_from_args(build_parser().parse_args(ours))


def test_unknown_underscore_flag_is_still_refused(capsys):
    from edgeport.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--data_path_train", "d", "--num_melz", "3"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --num_melz 3" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "tune"])
def test_help_prints_no_default_for_on_off_flags(command, capsys):
    from edgeport.cli.main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: True)" not in text and "(default: False)" not in text
    assert "--no-se disable squeeze-excitation --se-reduction" in text
    assert "SE channel reduction (default: 8)" in text  # valued options keep their default

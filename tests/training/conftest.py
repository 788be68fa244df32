"""Tiny synthetic audio and one tiny trained DS-CNN shared by the training tests (session scope)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests._support.shared import shared_dir

_shared = shared_dir  # the name earlier fixtures used

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Small enough for seconds per model: 16 kHz, 0.5 s chunks, 32 frames, 136 STFT bins, alpha 0.25.
TINY = {"sample_rate": 16000, "chunk_duration": 0.5, "spec_width": 32, "fft_length": 256, "num_mels": 16, "alpha": 0.25,
            "embeddings_size": 16, "batch_size": 8, "num_workers": 0, "progress": False, "max_chunks_per_file": 2,
            "bn_recalibration_batches": 4, "dropout": 0.1, "learning_rate": 3e-3, "reservoir_size": 64}


#: A smaller body (plain depthwise-separable blocks, no SE) for tests about the loop, not the architecture.
SMALL_BODY = {"use_se": False, "use_inverted_residual": False}


def tiny_config(data, ckpt, *, small_body=False, **kw):
    from edgeport.training.config import TrainConfig

    return TrainConfig(data_path_train=str(data), checkpoint_path=str(ckpt),
                       **{**TINY, **(SMALL_BODY if small_body else {}), **kw})


@pytest.fixture(scope="session")
def make_config():
    """``make_config(data, checkpoint, **overrides)`` -> a tiny TrainConfig."""
    return tiny_config


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """3 species (20 files each) + noise (10) of 1 s clips, easy difficulty."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    with shared_dir(tmp_path_factory, "tiny_audio") as (root, built):
        if not built:
            generate_dataset(root, SyntheticSpec(n_species=3, files_per_class=20, noise_files=10, duration=1.0,
                                                 sample_rate=16000, difficulty=0.0, snr_db=(5.0, 20.0)), seed=3)
    return root


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """3 species x 3 files + noise x 2: for runs of a step or two."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    root = tmp_path_factory.mktemp("small_audio")
    generate_dataset(root, SyntheticSpec(n_species=3, files_per_class=3, noise_files=2, duration=0.6,
                                         sample_rate=16000, difficulty=0.0), seed=4)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data):
    """One tiny DS-CNN trained for a few epochs (the session's shared model, trained once per test run)."""
    from edgeport.training.trainer import TrainResult, train

    with shared_dir(tmp_path_factory, "tiny_run") as (d, built):
        summary = d / "result.json"
        if not built:
            r = train(tiny_config(tiny_data, d / "tiny.keras", epochs=8, seed=1))
            summary.write_text(json.dumps({
                "paths": {k: str(v) for k, v in r.paths.items()}, "class_names": r.class_names,
                "epochs_run": r.epochs_run, "best_epoch": r.best_epoch, "val_loss": r.val_loss,
                "val_roc_auc": r.val_roc_auc, "seconds": r.seconds, "batchnorm": r.batchnorm}))
    s = json.loads(summary.read_text())
    return TrainResult(paths={k: Path(v) for k, v in s.pop("paths").items()}, history=[], **s)

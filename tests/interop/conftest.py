"""The audio seed system's published checkpoint (``shared/interop/birdnet-stm32/``, beside the clone; see
``tests/_support/interop.py`` for where it is looked for): tests skip with a reason when it is absent."""

from __future__ import annotations

import pytest

from tests._support.interop import ENV, find_interop, interop_candidates
from tests._support.shared import shared_dir

STEM = "birdnet_stm32n6_100"
#: synthetic folder for calibration / evaluation: species folders named as the model's first classes
N_SPECIES, FILES_PER_CLASS, NOISE_FILES, DURATION = 6, 4, 4, 4.0
#: seed-contract spectrograms of synthetic calls the comparisons run on (one in 8 is noise)
N_INPUTS = 32


@pytest.fixture(scope="session")
def stm32_dir():
    d = find_interop("birdnet-stm32")
    if d is None or not (d / f"{STEM}.keras").is_file():
        pytest.skip(f"the seed system's checkpoint (birdnet-stm32/) is not in any of "
                    f"{[str(p) for p in interop_candidates()]} (set {ENV} to its parent folder)")
    return d


@pytest.fixture(scope="session")
def stm32_files(stm32_dir):
    return {"keras": stm32_dir / f"{STEM}.keras", "tflite": stm32_dir / f"{STEM}.tflite",
            "config": stm32_dir / f"{STEM}_model_config.json", "labels": stm32_dir / f"{STEM}_labels.txt"}


@pytest.fixture(scope="session")
def stm32_cfg(stm32_files):
    from edgeport.families.audio.model_config import read_model_config

    return read_model_config(stm32_files["config"])


@pytest.fixture(scope="session")
def stm32_data(stm32_files, tmp_path_factory):
    """A synthetic folder at the model's rate whose class folders carry the model's first label names."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    labels = stm32_files["labels"].read_text().splitlines()
    with shared_dir(tmp_path_factory, "stm32_data") as (d, built):
        if not built:
            generate_dataset(d, SyntheticSpec(n_species=N_SPECIES, files_per_class=FILES_PER_CLASS,
                                              noise_files=NOISE_FILES, duration=DURATION, sample_rate=22050),
                             seed=11, names=labels[:N_SPECIES])
    return d


@pytest.fixture(scope="session")
def stm32_inputs(stm32_cfg):
    """Seed-contract model inputs (|STFT| min-max scaled per chunk, 257 bins) of synthetic calls."""
    import numpy as np

    from edgeport.audio.synthetic import CallSynth, SyntheticSpec, make_clip
    from edgeport.families.audio.contract import features

    rng = np.random.default_rng(7)
    synth = CallSynth(SyntheticSpec(n_species=8, sample_rate=stm32_cfg.sample_rate,
                                    duration=stm32_cfg.chunk_duration))
    return np.stack([features(make_clip(synth, None if i % 8 == 7 else i % 8, rng), stm32_cfg)
                     for i in range(N_INPUTS)])

"""The representative dataset and the held-out validation chunks of an audio data folder (SPEC §3-4)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.families.audio import AudioModelConfig

CFG = {"sample_rate": 16000, "chunk_duration": 0.5, "spec_width": 32, "fft_length": 256, "num_mels": 16}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """robin x 6 files, wren x 2 files, noise x 2 files (1 s each), plus one silent robin file."""
    from edgeport.audio.io import write_wav

    root = tmp_path_factory.mktemp("rep")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for name, n, f in (("robin", 6, 2000.0), ("wren", 2, 4000.0), ("noise", 2, None)):
        for i in range(n):
            x = rng.normal(0, 0.3, t.size)  # noise everywhere: no two chunks of a file are the same
            if f is not None:
                x = 0.1 * x + 0.5 * np.sin(2 * np.pi * (f + 100 * i) * t)
            write_wav(root / name / f"{name}_{i}.wav", x.astype(np.float32), 16000)
    write_wav(root / "robin" / "robin_silent.wav", np.zeros(16000, np.float32), 16000)
    return root


@pytest.mark.parametrize("frontend", ["hybrid", "raw", "librosa"])
def test_calibration_is_stratified_centre_chunks_without_silence(folder, frontend):
    from edgeport.audio.chunking import chunk_signal
    from edgeport.audio.io import load
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.representative import build_audio_inputs

    cfg = AudioModelConfig(audio_frontend=frontend, mag_scale="pwl", **CFG)
    data = build_audio_inputs(folder, cfg, num_samples=6, validate_samples=8, progress=False)
    cal = data.calibration_inputs(1024)["input"]
    assert cal.shape == (6, *cfg.input_shape)
    # round robin over noise / robin / wren: 2 of each before a third of any
    assert data.calibration_classes == {"noise": 2, "robin": 2, "wren": 2}
    # every calibration row is the centre chunk of one of the files, and none is silent
    centres = []
    for p in sorted(folder.rglob("*.wav")):
        chunks = chunk_signal(load(p, cfg.sample_rate), cfg.chunk_samples, 0.5)
        centres.append(features(chunks[len(chunks) // 2], cfg))
    for row in cal:
        assert any(np.array_equal(row, c) for c in centres)
        assert float(np.abs(row).mean()) > 0
    # held-out rows are never calibration rows; hard cases lead the validation set
    assert not any(np.array_equal(h, c) for h in data.heldout for c in cal)
    ref = data.reference_inputs(8, seed=0)["input"]
    assert ref.shape == (8, *cfg.input_shape)
    np.testing.assert_array_equal(ref[0], features(np.zeros(cfg.chunk_samples, np.float32), cfg))
    assert data.hard_case_names[0] == "silence" and len(data.hard_cases) == 3
    assert not np.array_equal(data.reference_inputs(8, seed=1)["input"], ref)  # another seed, another sample


def test_silent_centre_chunks_are_skipped_and_counted(folder):
    from edgeport.families.audio.representative import build_audio_inputs

    cfg = AudioModelConfig(audio_frontend="hybrid", mag_scale="pwl", **CFG)
    data = build_audio_inputs(folder, cfg, num_samples=1024, validate_samples=8, progress=False, rows_per_file=1)
    assert data.skipped_silent == 1 and len(data.calibration) == 10
    s = data.summary()
    assert s["skipped_near_silent"] == 1 and s["skipped_near_silent_share"] == pytest.approx(1 / 11, abs=1e-4)
    assert s["rows_per_file"] == 1 and s["files_used"] == 10 and s["class_histogram"] == {"noise": 2, "robin": 6,
                                                                                            "wren": 2}


def test_default_rows_per_file():
    from edgeport.families.audio.representative import (
        MAX_ROWS_PER_FILE,
        default_rows_per_file,
    )

    assert default_rows_per_file(1024, 1024) == default_rows_per_file(5000, 1024) == 1
    assert default_rows_per_file(600, 1024) == 2
    assert default_rows_per_file(100, 1024) == default_rows_per_file(1, 1024) == MAX_ROWS_PER_FILE
    assert default_rows_per_file(10, 20) == 2


def test_a_small_folder_gives_the_centre_chunk_then_the_most_energetic_others(folder):
    """Fewer files than --num-samples: each file gives its centre chunk, then its other chunks by decreasing
    energy, and keeps one chunk for validation; a silent file gives none and each skipped chunk is counted."""
    from edgeport.audio.chunking import chunk_signal
    from edgeport.audio.io import load
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.representative import build_audio_inputs

    cfg = AudioModelConfig(audio_frontend="hybrid", mag_scale="pwl", **CFG)
    data = build_audio_inputs(folder, cfg, num_samples=1024, validate_samples=8, progress=False)
    s = data.summary()
    assert s["rows_per_file"] == 3 and s["files_used"] == 10
    # 1 s files, 0.5 s chunks half-overlapping: 3 chunks a file, 2 for calibration, 1 held out
    assert len(data.calibration) == 20 and len(data.heldout) == 10 + 3
    assert data.skipped_silent == 2 and s["skipped_near_silent_share"] == pytest.approx(2 / 22, abs=1e-4)
    assert s["class_histogram"] == {"noise": 4, "robin": 12, "wren": 4}
    want = []
    for p in sorted(folder.rglob("*.wav")):
        if "silent" in p.name:
            continue
        chunks = chunk_signal(load(p, cfg.sample_rate), cfg.chunk_samples, 0.5)
        assert len(chunks) == 3
        energy = (chunks.astype(np.float64) ** 2).mean(axis=1)
        loudest = max((0, 2), key=lambda j: energy[j])
        want += [features(chunks[1], cfg), features(chunks[loudest], cfg)]
    assert sorted(r.tobytes() for r in data.calibration) == sorted(r.tobytes() for r in want)
    assert not any(np.array_equal(h, c) for h in data.heldout for c in data.calibration)
    assert set(s["value_percentiles"]) == {"p0.1", "p50", "p99.9"}
    # an explicit rows_per_file wins; 0 is refused in one line
    assert len(build_audio_inputs(folder, cfg, num_samples=1024, validate_samples=8, progress=False,
                                  rows_per_file=1).calibration) == 10
    from edgeport.errors import DataError

    with pytest.raises(DataError, match="rows per file must be >= 1"):
        build_audio_inputs(folder, cfg, num_samples=8, progress=False, rows_per_file=0)

"""Dataset scanning, labels, splits, class weights, the chunk stream and bad folders."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgeport.errors import ConfigError, DataError


def _write(path, seconds=0.5, sr=16000, freq=3000.0):
    from edgeport.audio.io import write_wav

    t = np.arange(int(seconds * sr)) / sr
    env = 0.1 + 0.8 * t / seconds  # rising level: chunk energies differ (no ties in salient-chunk ranking)
    write_wav(path, env * np.sin(2 * np.pi * freq * t), sr)


def _folder(root, counts, noise=()):
    for name, n in counts.items():
        for i in range(n):
            _write(root / name / f"{i}.wav", freq=1000 + 500 * len(name))
    for name in noise:
        for i in range(2):
            _write(root / name / f"{i}.wav")
    return root


def test_noise_folders_give_all_zero_labels(tmp_path):
    from edgeport.audio.dataset import scan_dataset

    ds = scan_dataset(_folder(tmp_path, {"robin": 2, "wren": 3}, noise=("noise", "Silence", "background", "other")))
    assert ds.class_names == ["robin", "wren"]
    for f, y in zip(ds.files, ds.labels, strict=True):
        folder = f.split("/")[-2]
        if folder in ("robin", "wren"):
            assert y.tolist() == [float(folder == "robin"), float(folder == "wren")]
        else:
            assert y.sum() == 0
    assert len(ds) == 5 + 8


def test_class_weights_follow_inverse_frequency():
    from edgeport.training.data import class_weights, sample_weights

    y = np.zeros((10, 3), np.float32)
    y[:6, 0] = 1
    y[6:8, 1] = 1
    y[8:9, 2] = 1  # one noise row (all zero)
    w = class_weights(y)
    np.testing.assert_allclose(w, [10 / (3 * 6), 10 / (3 * 2), 10 / (3 * 1)], rtol=1e-6)
    sw = sample_weights(y, w)
    assert sw[0] == pytest.approx(w[0]) and sw[8] == pytest.approx(w[2]) and sw[9] == 1.0
    assert np.all(sample_weights(y, None) == 1.0)


def test_upsample_and_max_samples(tmp_path):
    from edgeport.audio.dataset import scan_dataset
    from edgeport.training.data import upsample_indices

    ds = scan_dataset(_folder(tmp_path, {"a": 8, "b": 2}))
    up = upsample_indices(ds.folder_of, 0.5, seed=0)
    counts = np.bincount(ds.folder_of[up])
    assert counts.tolist() == [8, 4]
    assert np.bincount(ds.folder_of[upsample_indices(ds.folder_of, 0.0, 0)]).tolist() == [8, 2]
    assert len(scan_dataset(tmp_path, max_samples=3)) == 3 + 2


def test_class_with_one_file_is_train_only_with_warning(tmp_path, caplog):
    from edgeport.audio.dataset import scan_dataset
    from edgeport.training.data import split_dataset

    ds = scan_dataset(_folder(tmp_path, {"common": 10, "rare": 1}))
    with caplog.at_level(logging.WARNING):
        tr, va = split_dataset(ds, 0.2, seed=0)
    assert "Class 'rare' has only 1 file" in caplog.text
    rare = ds.class_names.index("rare")
    assert ds.labels[tr, rare].sum() == 1 and ds.labels[va, rare].sum() == 0
    assert len(va) == 2


def test_unreadable_files_skipped_and_listed(tmp_path, caplog):
    from edgeport.audio.dataset import scan_dataset

    _folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (tmp_path / "b" / "empty.flac").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        ds = scan_dataset(tmp_path)
    assert len(ds) == 4
    assert sorted(p.split("/")[-1] for p, _ in ds.skipped) == ["broken.wav", "empty.flac"]
    assert "Skipped 2 unreadable audio file(s)" in caplog.text


def test_folder_with_only_unreadable_files(tmp_path):
    from edgeport.audio.dataset import scan_dataset

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(b"not audio")
    with pytest.raises(DataError, match="1 unreadable file"):
        scan_dataset(tmp_path)


def test_empty_and_missing_folders(tmp_path):
    from edgeport.audio.dataset import scan_dataset

    with pytest.raises(DataError, match="no audio files"):
        scan_dataset(tmp_path)
    with pytest.raises(DataError, match="not found"):
        scan_dataset(tmp_path / "nope")
    _folder(tmp_path, {}, noise=("noise",))
    with pytest.raises(DataError, match="only noise folders"):
        scan_dataset(tmp_path)


def test_unknown_frontend_message():
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.training.config import TrainConfig

    with pytest.raises(ConfigError, match=r"Unknown audio frontend 'stft'. Available: \["):
        AudioModelConfig(audio_frontend="stft")
    with pytest.raises(ConfigError, match="Unknown optimizer"):
        TrainConfig(data_path_train="x", optimizer="lamb")


def test_mfcc_needs_as_many_mels_as_coefficients(tmp_path):
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.model_config import AudioModelConfig

    with pytest.raises(ConfigError, match="--n-mfcc 20 is more than --num-mels 16"):
        AudioModelConfig(audio_frontend="mfcc", mag_scale="none", num_mels=16, n_mfcc=20)
    AudioModelConfig(audio_frontend="hybrid", num_mels=16, n_mfcc=20)  # n_mfcc unused by other frontends
    cfg = AudioModelConfig(audio_frontend="mfcc", mag_scale="none", sample_rate=8000, chunk_duration=0.25,
                           spec_width=8, fft_length=128, num_mels=16, n_mfcc=16)
    x = features(np.random.default_rng(0).normal(size=cfg.chunk_samples), cfg)
    assert x.shape == cfg.input_shape == (16, 8, 1)


def test_chunk_stream_same_with_and_without_workers(tmp_path):
    import json

    from edgeport.audio.dataset import scan_dataset
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.training.data import ChunkStream, make_executor

    ds = scan_dataset(_folder(tmp_path, {"a": 3, "b": 3}))
    cfg = AudioModelConfig(sample_rate=8000, chunk_duration=0.25, spec_width=8, fft_length=128, num_mels=16,
                           num_classes=2, class_names=("a", "b"))
    cj = json.dumps(cfg.to_dict())
    seq = ChunkStream(ds.files, ds.labels, cj, seed=3, max_chunks_per_file=2, reservoir_size=4)
    a = list(seq.batches(4, 3))
    ex = make_executor(1)
    try:
        par = ChunkStream(ds.files, ds.labels, cj, executor=ex, seed=3, max_chunks_per_file=2, reservoir_size=4)
        b = list(par.batches(4, 3))
    finally:
        ex.shutdown()
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        # same chunks in the same order; values may differ by float32 rounding between processes (resampler)
        np.testing.assert_allclose(xa, xb, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(ya, yb)
    assert a[0][0].shape == (4, *cfg.input_shape)
    assert seq.files_opened < 12  # 12 chunks from fewer file opens (2 chunks per open)


def test_raw_frontend_limit_warned(tmp_path, caplog):
    from edgeport.families.audio.frontends import npu_problems
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig(audio_frontend="raw", sample_rate=24000, chunk_duration=3.0, num_mels=60)
    msgs = npu_problems(cfg)
    assert any("72000 samples" in m and "65536" in m for m in msgs)
    assert any("not a multiple of 8" in m for m in msgs)
    assert npu_problems(AudioModelConfig(audio_frontend="raw", sample_rate=16000, chunk_duration=3.0)) == []

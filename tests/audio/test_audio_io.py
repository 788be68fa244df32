"""Audio reading (formats, mono, resampling, normalisation), chunking, salient chunks, augmentation."""

from __future__ import annotations

import numpy as np
import pytest


def _tone(sr=16000, seconds=1.0, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(("suffix", "fmt", "tol"), [(".wav", "WAV", 1e-4), (".flac", "FLAC", 1e-4),
                                                   (".ogg", "OGG", 0.05), (".mp3", "MP3", 0.05)])
def test_read_formats_stereo_to_mono(tmp_path, suffix, fmt, tol):
    import soundfile as sf

    from edgeport.audio.io import read_audio

    x = _tone()
    stereo = np.stack([x, 0.5 * x], axis=1)
    path = tmp_path / f"a{suffix}"
    sf.write(str(path), stereo, 16000, format=fmt)
    y, sr = read_audio(path)
    assert sr == 16000 and y.ndim == 1 and y.dtype == np.float32
    n = min(y.size, x.size)
    # mono = mean of channels = 0.75 x; lossy codecs add delay/noise, compare energy
    assert np.sqrt(np.mean(y[:n] ** 2)) == pytest.approx(np.sqrt(np.mean((0.75 * x) ** 2)), rel=0.1)
    if tol < 1e-3:
        np.testing.assert_allclose(y[:n], 0.75 * x[:n], atol=tol)


def test_resample_and_normalise(tmp_path):
    from edgeport.audio.io import load, write_wav

    write_wav(tmp_path / "a.wav", _tone(sr=22050, seconds=2.0, freq=1000.0), 22050)
    y = load(tmp_path / "a.wav", 16000)
    assert y.size == 32000
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-3)
    spec = np.abs(np.fft.rfft(y))
    assert np.argmax(spec) * 16000 / y.size == pytest.approx(1000.0, abs=2.0)
    assert load(tmp_path / "a.wav", 16000, max_duration=0.5).size == 8000


def test_chunking_with_overlap():
    from edgeport.audio.chunking import chunk_signal, fit_length

    x = np.arange(1000, dtype=np.float32)
    c = chunk_signal(x, 400, overlap=0.5)
    assert c.shape == (4, 400)
    assert c[1, 0] == 200 and c[-1, -1] == 999  # tail covered
    assert chunk_signal(x[:100], 400).shape == (1, 400)
    assert fit_length(x[:100], 400).sum() == x[:100].sum()


def test_salient_chunks_pick_loud_region():
    from edgeport.audio.chunking import salient_chunks

    rng = np.random.default_rng(0)
    x = 0.01 * rng.standard_normal(16000).astype(np.float32)
    x[12000:13000] += np.sin(np.arange(1000)).astype(np.float32)
    c = salient_chunks(x, 2000, 1)
    assert c.shape == (1, 2000) and np.max(np.abs(c)) > 0.5
    two = salient_chunks(x, 2000, 2)
    assert two.shape == (2, 2000)


def test_mixup_labels_are_elementwise_max():
    from edgeport.audio.augment import mixup

    rng = np.random.default_rng(0)
    x = rng.random((16, 4, 5, 1)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
    y[3] = 0  # a noise sample
    xm, ym = mixup(x, y, rng, alpha=0.2, probability=1.0)
    changed = [i for i in range(16) if not np.array_equal(xm[i], x[i])]
    assert len(changed) >= 12
    for i in changed:  # x is a convex mix of batch items; y the max of those items' labels
        assert set(np.flatnonzero(ym[i])) >= set(np.flatnonzero(y[i]))
        assert ym[i].max() <= 1.0 and np.all(np.isin(ym[i], [0.0, 1.0]))
    # exact check with two known sources
    x2 = np.stack([np.zeros((2, 2, 1)), np.ones((2, 2, 1))]).astype(np.float32)
    y2 = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    xm2, ym2 = mixup(x2, y2, np.random.default_rng(1), alpha=0.5, probability=1.0, max_sources=2)
    np.testing.assert_array_equal(ym2, [[1, 0, 1], [1, 0, 1]])
    lam = xm2[0, 0, 0, 0]
    assert 0 < lam < 1 and np.allclose(xm2[0], lam)
    assert mixup(x, y, rng, alpha=0.0)[0] is x


def test_spec_augment_masks():
    from edgeport.audio.augment import spec_augment

    x = np.ones((8, 20, 30, 1), np.float32)
    m = spec_augment(x, np.random.default_rng(0), freq_mask_max=5, time_mask_max=7)
    zeros = m == 0
    for i in range(8):
        rows = np.flatnonzero(zeros[i, :, :, 0].all(axis=1))
        cols = np.flatnonzero(zeros[i, :, :, 0].all(axis=0))
        assert rows.size <= 5 and cols.size <= 7
    assert zeros.any() and np.all(x == 1)


def test_synthetic_generator_writes_labelled_folder(tmp_path):
    from edgeport.audio.dataset import scan_dataset
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    names = generate_dataset(tmp_path, SyntheticSpec(n_species=4, files_per_class=2, noise_files=3, duration=1.0),
                             seed=0)
    ds = scan_dataset(tmp_path)
    assert ds.class_names == names and len(ds) == 4 * 2 + 3
    assert (ds.labels.sum(axis=1) == 0).sum() == 3


def test_energy_cumsum_and_salient_starts():
    from edgeport.audio.chunking import energy_cumsum, salient_chunks, salient_starts

    rng = np.random.default_rng(3)
    x = (rng.standard_normal(50_001) * np.linspace(0.1, 1.0, 50_001)).astype(np.float32)
    # float64 sum of the exact squares, one sample after another
    np.testing.assert_array_equal(energy_cumsum(x), np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)]))
    assert energy_cumsum(np.zeros(0, np.float32)).tolist() == [0.0]
    c = energy_cumsum(x)
    for seed in range(4):
        starts = salient_starts(x, 4000, 3, rng=np.random.default_rng(seed), cumsum=c)
        chunks = salient_chunks(x, 4000, 3, rng=np.random.default_rng(seed))
        assert starts.tolist() == sorted(starts.tolist()) and len(starts) == 3
        np.testing.assert_array_equal(chunks, np.stack([x[s:s + 4000] for s in starts]))
    assert salient_starts(x[:4000], 4000, 3) is None and salient_chunks(x[:100], 4000, 3).shape == (1, 4000)

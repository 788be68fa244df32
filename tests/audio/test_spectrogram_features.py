"""log_mel and mfcc features: background (and silence) at 0, the loudest cell at 1, level-independent."""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

from edgeport.audio import spectrogram as sp


def _mel(seed: int = 0, n_mels: int = 16, frames: int = 32) -> np.ndarray:
    """Mel magnitudes: a noise background with one loud band (a call) in some frames."""
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.5, 1.5, (n_mels, frames)) * 1e-2
    m[10:12, 8:20] = 1.0
    return m.astype(np.float32)


def test_log_mel_background_is_zero_and_the_loudest_cell_one():
    y = sp.log_mel(_mel())
    assert y.dtype == np.float32 and y.shape == (16, 32)
    assert y.min() == 0.0 and y.max() == 1.0
    assert np.mean(y == 0.0) >= 0.5  # the median level and everything below it
    assert y[10:12, 8:20].min() > 0.9 and np.median(y[:8]) < 0.2  # the call stands out of the background


def test_log_mel_and_mfcc_ignore_the_level_and_silence_is_zero():
    m = _mel()
    np.testing.assert_allclose(sp.log_mel(m * 1e-3), sp.log_mel(m), atol=1e-5)
    np.testing.assert_allclose(sp.mfcc(m * 1e-3, 16), sp.mfcc(m, 16), atol=1e-4)
    assert not sp.log_mel(np.zeros((16, 32), np.float32)).any()
    assert not sp.mfcc(np.zeros((16, 32), np.float32), 8).any()
    assert not sp.log_mel(np.full((16, 32), 0.3, np.float32)).any()  # flat: nothing above the background


def test_mfcc_is_the_dct_of_log_mel_and_c0_does_not_dominate():
    m = _mel(1)
    c = sp.mfcc(m, 12)
    assert c.dtype == np.float32 and c.shape == (12, 32)
    np.testing.assert_allclose(c, dct(sp.log_mel(m), type=2, axis=0, norm="ortho")[:12], atol=1e-5)
    # one INT8 input scale covers every coefficient: c0's spread is of the order of the others'
    spread = c.max(axis=1) - c.min(axis=1)
    assert spread[0] <= 3 * np.median(spread[1:])
    assert np.abs(c).max() <= np.sqrt(2 * 16)


def _stft_reference(x: np.ndarray, fft_length: int, hop: int, n_frames: int) -> np.ndarray:
    """|STFT| written out plainly in float64: gathered centred frames, periodic Hann window, numpy's rfft."""
    pad = fft_length // 2
    xp = np.pad(x.astype(np.float64), (pad, pad + max(0, (n_frames - 1) * hop + fft_length - x.size - 2 * pad)))
    idx = np.arange(fft_length)[None, :] + hop * np.arange(n_frames)[:, None]
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fft_length) / fft_length)
    return np.abs(np.fft.rfft(xp[idx] * w, axis=1)).T


def test_stft_magnitude_is_the_plain_stft_within_float32_rounding():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(24000)).astype(np.float32)
    for size, fft, hop, frames in ((24000, 512, 93, 256), (24000, 256, 187, 128), (300, 256, 50, 16),
                                   (30000, 512, 93, 256)):   # a chunk, a short signal, a signal past n_frames
        got = sp.stft_magnitude(x[:size], fft, hop, frames)
        ref = _stft_reference(x[:size], fft, hop, frames)
        assert got.dtype == np.float32 and got.shape == (fft // 2 + 1, frames)
        # float32 samples, window and transform: errors of a few float32 ulps of the largest magnitude
        np.testing.assert_allclose(got, ref, rtol=0, atol=4 * np.finfo(np.float32).eps * ref.max())
    np.testing.assert_array_equal(sp.stft_magnitude(x.astype(np.float64), 256, 187, 128),
                                  sp.stft_magnitude(x, 256, 187, 128))  # float64 in: the same float32 result


def test_stft_magnitude_results_are_independent_of_earlier_calls_and_threads():
    """The padded-signal and frame buffers are reused per thread: a result never changes afterwards, and
    a call after another size or in another thread gives what a first call gives."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(8000).astype(np.float32), rng.standard_normal(5000).astype(np.float32)
    first_a = sp.stft_magnitude(a, 256, 100, 64)
    kept = first_a.copy()
    first_b = sp.stft_magnitude(b, 256, 100, 64)   # another size: the padding past b's end is zero
    np.testing.assert_array_equal(first_a, kept)
    np.testing.assert_array_equal(sp.stft_magnitude(a, 256, 100, 64), first_a)
    np.testing.assert_array_equal(sp.stft_magnitude(b[:4000], 256, 100, 64),
                                  _stft_free(b[:4000], 256, 100, 64))
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda v: sp.stft_magnitude(v, 256, 100, 64), [a, b] * 20))
    for o, ref in zip(outs, [first_a, first_b] * 20, strict=True):
        np.testing.assert_array_equal(o, ref)


def _stft_free(x, fft, hop, frames):
    """``stft_magnitude`` in a fresh thread (fresh buffers)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        return ex.submit(sp.stft_magnitude, x, fft, hop, frames).result()

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

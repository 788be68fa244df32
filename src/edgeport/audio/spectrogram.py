"""Spectrograms in numpy: linear STFT magnitude, Slaney mel, log-mel, MFCC, and magnitude scaling.

The numpy magnitude scalings use the same formulas and initial parameters as the in-graph Keras
layers (edgeport.families.audio.layers), so offline (``librosa``) and in-graph (``hybrid``) agree at
initialisation.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

#: Mel filterbank low edge (Hz): below it is wind and handling noise, not birds.
MEL_FMIN = 150.0
#: pwl knots and initial slopes: 0.40x + 0.25 relu(x-0.10) + 0.15 relu(x-0.35) + 0.08 relu(x-0.65)
PWL_KNOTS = (0.0, 0.10, 0.35, 0.65)
PWL_SLOPES = (0.40, 0.25, 0.15, 0.08)
#: PCEN initial parameters (input is max-normalised to [0, 1]) and smoother width in frames.
PCEN_ALPHA, PCEN_DELTA, PCEN_ROOT, PCEN_EPS, PCEN_WINDOW = 0.8, 0.01, 0.25, 1e-6, 9
#: dB floor: values are mapped from [-DB_RANGE, 0] dB to [0, 1].
DB_RANGE = 80.0
#: log_mel: a chunk whose median cell is within this many dB of its maximum is flat (all 0).
LOG_MEL_MIN_CONTRAST_DB = 1.0


def hop_length(sample_rate: int, chunk_duration: float, spec_width: int) -> int:
    return max(1, round(sample_rate * chunk_duration) // spec_width)


def padded_bins(fft_length: int) -> int:
    """fft_length//2 + 1 rounded up to a multiple of 8 (257 -> 264) for NPU-friendly channel counts."""
    n = fft_length // 2 + 1
    return ((n + 7) // 8) * 8


@lru_cache(maxsize=8)
def _window(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic Hann


_WORK = threading.local()


def _stft_buffers(size: int, fft_length: int, hop: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's zero-padded signal and frame buffers for one STFT geometry, reused call after call.

    Fresh arrays of this size (about 0.3 and 0.5 MB at the defaults) are served by the allocator as new
    pages every time, and the page faults cost more than the transform itself. The padding of the signal
    buffer stays zero: only ``size`` samples after the left padding are ever written."""
    key = (size, fft_length, hop, n_frames)
    if getattr(_WORK, "key", None) != key:
        pad = fft_length // 2
        _WORK.signal = np.zeros(max(size + 2 * pad, (n_frames - 1) * hop + fft_length), np.float32)
        _WORK.frames = np.empty((n_frames, fft_length), np.float32)
        _WORK.key = key
    return _WORK.signal, _WORK.frames


def stft_magnitude(x: np.ndarray, fft_length: int, hop: int, n_frames: int) -> np.ndarray:
    """|STFT| (fft_length//2+1, n_frames) float32, centred frames (zero padded), Hann window.

    The frames are a strided view of the padded signal (no gather), windowed in one multiply into a
    reused buffer, and transformed in single precision by ``scipy.fft.rfft`` (several times faster than
    ``numpy.fft`` on a (frames, fft_length) block, the same float32 rounding). Only the spectrum and its
    magnitude are new arrays; the result is the transpose of a (frames, bins) array.
    """
    from numpy.lib.stride_tricks import as_strided
    from scipy.fft import rfft

    x = np.asarray(x)
    signal, frames = _stft_buffers(x.size, fft_length, hop, n_frames)
    pad = fft_length // 2
    signal[pad:pad + x.size] = x.reshape(-1)
    step = signal.strides[0]
    np.multiply(as_strided(signal, (n_frames, fft_length), (hop * step, step), writeable=False),
                _window(fft_length), out=frames)
    return np.abs(rfft(frames, axis=1)).T


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, fft_length: int, num_mels: int, fmin: float = MEL_FMIN) -> np.ndarray:
    """Slaney-style mel filterbank (num_mels, fft_length//2+1), fmin..sr/2 (librosa's definition)."""
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=fft_length, n_mels=num_mels, fmin=fmin,
                               fmax=sample_rate / 2.0, htk=False, norm="slaney").astype(np.float32)


def max_normalize(s: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return (s / (np.max(s) + eps)).astype(np.float32)


def scale_pwl(x: np.ndarray) -> np.ndarray:
    y = np.zeros_like(x)
    for k, a in zip(PWL_KNOTS, PWL_SLOPES, strict=True):
        y += a * np.maximum(x - k, 0.0)
    return y.astype(np.float32)


def scale_pcen(x: np.ndarray) -> np.ndarray:
    """PCEN over (bins, frames): a moving average over time as the smoother."""
    from scipy.ndimage import uniform_filter1d

    m = uniform_filter1d(x, size=PCEN_WINDOW, axis=1, mode="constant")
    y = (x / (PCEN_EPS + m) ** PCEN_ALPHA + PCEN_DELTA) ** PCEN_ROOT - PCEN_DELTA ** PCEN_ROOT
    return y.astype(np.float32)


def scale_db(x: np.ndarray) -> np.ndarray:
    db = 10.0 * np.log10(np.maximum(x, 10 ** (-DB_RANGE / 10)))
    return ((np.clip(db, -DB_RANGE, 0.0) + DB_RANGE) / DB_RANGE).astype(np.float32)


def scale_none(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, copy=False)


MAG_SCALES_NUMPY = {"pwl": scale_pwl, "pcen": scale_pcen, "db": scale_db, "none": scale_none}


def log_mel(mel_mag: np.ndarray) -> np.ndarray:
    """Log-power mel in [0, 1]: dB above the chunk's median level, over the chunk's max-minus-median range.

    Power in dB relative to the chunk's maximum (floor -80 dB); the median cell (the chunk's background)
    maps to 0, cells below it are clipped to 0, the loudest cell maps to 1. A flat chunk (digital
    silence) is all 0. So 0 means "background", as in the other frontends: SpecAugment's zero-filled masks
    are then background too. The earlier mapping ([-80, 0] dB -> [0, 1]) put every real cell in about
    [0.26, 1] (mean 0.72, signal bands ~0.1 above the background) and the zero masks 0.7 below anything
    real: the tiny test model trained with SpecAugment reached validation ROC-AUC 0.52 (0.89 without it).
    """
    p = mel_mag.astype(np.float64) ** 2
    db = 10.0 * np.log10(np.maximum(p, 1e-12) / max(float(p.max()), 1e-12))
    db = np.clip(db, -DB_RANGE, 0.0)
    floor = float(np.median(db))
    if floor > -LOG_MEL_MIN_CONTRAST_DB:  # (almost) flat chunk: nothing stands out of the background
        return np.zeros(db.shape, np.float32)
    return (np.maximum(db - floor, 0.0) / -floor).astype(np.float32)


def mfcc(mel_mag: np.ndarray, n_mfcc: int) -> np.ndarray:
    """MFCC: DCT-II (orthonormal) over the mel axis of :func:`log_mel`, first ``n_mfcc`` coefficients.

    Background (and silence) is 0 in every coefficient; values stay within +-sqrt(2 n_mels), c0 in
    [0, sqrt(n_mels)] (measured on the test data: [-0.9, 2.0], c0 std 0.21, c1..c15 0.09-0.35). The earlier
    per-chunk standardisation over all coefficients left c0 at ~+3.8 and every other coefficient within
    +-0.3: one INT8 input scale for all of them gave c1.. a few steps, and SpecAugment's zero masks were far
    from any real value (tiny test model: validation ROC-AUC 0.53 with SpecAugment, 0.91 without, and even
    then full INT8 top-1 0.89, Pearson r 0.94).
    """
    from scipy.fft import dct

    c = dct(log_mel(mel_mag).astype(np.float64), type=2, axis=0, norm="ortho")[:n_mfcc]
    return c.astype(np.float32)

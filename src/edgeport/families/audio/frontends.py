"""Frontend and magnitude-scaling registries: one name each, host-side features in numpy.

A frontend says what the model input is (its shape and how to compute it from a chunk of audio) and
which magnitude scalings it accepts. The in-graph parts (mel mixer, normalisation, learned scaling,
raw filterbank) are Keras layers built by ``edgeport.families.audio.dscnn``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeport.audio import spectrogram as sp
from edgeport.errors import ConfigError
from edgeport.registry import Registry

#: an ``AudioModelConfig``: ``model_config`` imports this module to check its names, so this module does not
#: import it back
AudioConfig = Any

log = logging.getLogger(__name__)

#: Raw-frontend input limit: 16-bit activation size on the target NPU.
RAW_MAX_SAMPLES = 65536

MAG_SCALES: Registry[str] = Registry("magnitude scaling", ConfigError)
for _name, _doc in (("pwl", "piecewise-linear learned compression (quantization friendly)"),
                    ("pcen", "per-channel energy normalisation (pooling + power)"),
                    ("db", "log scale in decibels (quantizes poorly)"),
                    ("none", "no compression")):
    MAG_SCALES.register(_name, _doc)


@dataclass(frozen=True)
class FrontendSpec:
    """``features`` gives the frontend's core features of one chunk: (bins, frames) for a spectrogram frontend,
    (samples,) for the raw waveform; ``core_shape`` their shape. The input contract of the model config then
    scales, pads and shapes them into the model input (``contract.features``)."""

    name: str
    description: str
    in_graph: bool                       # does the model hold (part of) the frontend?
    mag_scales: tuple[str, ...]          # accepted magnitude scalings
    core_shape: Callable[[AudioConfig], tuple[int, ...]]
    features: Callable[[np.ndarray, AudioConfig], np.ndarray]  # chunk -> core features

    @property
    def spectrogram(self) -> bool:
        return self.name != "raw"


FRONTENDS: Registry[FrontendSpec] = Registry("audio frontend", ConfigError)
#: Deprecated names -> current names.
ALIASES = {"precomputed": "librosa", "tf": "raw"}


def _stft(chunk: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    return sp.stft_magnitude(chunk, cfg.fft_length, cfg.hop_length, cfg.spec_width)


def _mel(chunk: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    return sp.mel_filterbank(cfg.sample_rate, cfg.fft_length, cfg.num_mels) @ _stft(chunk, cfg)


def _librosa(chunk, cfg):
    m = sp.max_normalize(_mel(chunk, cfg))
    return sp.MAG_SCALES_NUMPY[cfg.mag_scale](m)


def _raw(chunk, cfg):
    return chunk.astype(np.float32).reshape(-1)


def _mfcc(chunk, cfg):
    return sp.mfcc(_mel(chunk, cfg), cfg.n_mfcc)


def _log_mel(chunk, cfg):
    return sp.log_mel(_mel(chunk, cfg))


_ALL = tuple(MAG_SCALES.names())
FRONTENDS.register("hybrid", FrontendSpec(
    "hybrid", "linear STFT in; fixed Slaney mel mixer, normalisation and magnitude scaling in the graph",
    True, _ALL, lambda c: (c.fft_length // 2 + 1, c.spec_width), _stft))
FRONTENDS.register("librosa", FrontendSpec(
    "librosa", "mel spectrogram computed offline, magnitude scaling applied offline",
    False, _ALL, lambda c: (c.num_mels, c.spec_width), _librosa))
FRONTENDS.register("raw", FrontendSpec(
    "raw", "raw waveform in; learned Conv2D 1x16 filterbank, BN, ReLU6 and magnitude scaling in the graph",
    True, _ALL, lambda c: (c.chunk_samples,), _raw))
FRONTENDS.register("mfcc", FrontendSpec(
    "mfcc", "MFCC (DCT of the log_mel features) computed offline (no magnitude scaling)", False, ("none",),
    lambda c: (c.n_mfcc, c.spec_width), _mfcc))
FRONTENDS.register("log_mel", FrontendSpec(
    "log_mel", "log-power mel computed offline, dB above the chunk's median level (no magnitude scaling)", False, ("none",),
    lambda c: (c.num_mels, c.spec_width), _log_mel))


def resolve_frontend(name: str) -> str:
    """Registered name for ``name``; deprecated aliases warn (FutureWarning) and map to the new name."""
    if name in ALIASES:
        new = ALIASES[name]
        msg = f"audio frontend '{name}' is deprecated and will be removed; use '{new}'"
        warnings.warn(msg, FutureWarning, stacklevel=3)
        log.warning(msg)
        return new
    FRONTENDS.get(name)  # raises ConfigError listing the known names
    return name


def check_pair(frontend: str, mag_scale: str) -> None:
    """Refuse a frontend x magnitude-scaling pair that has no meaning (e.g. mfcc + pwl)."""
    MAG_SCALES.get(mag_scale)
    spec = FRONTENDS.get(frontend)
    if mag_scale not in spec.mag_scales:
        raise ConfigError(f"Frontend '{frontend}' takes no magnitude scaling '{mag_scale}' "
                          f"(allowed: {list(spec.mag_scales)}); use --mag-scale {spec.mag_scales[0]}")


def valid_pairs() -> list[tuple[str, str]]:
    return [(f, m) for f, spec in FRONTENDS.items() for m in spec.mag_scales]


def npu_problems(cfg: AudioConfig) -> list[str]:
    """Reasons the config will not fit the microcontroller NPU (empty list: fine)."""
    problems = []
    if cfg.audio_frontend == "raw" and cfg.chunk_samples > RAW_MAX_SAMPLES:
        problems.append(
            f"raw frontend input is {cfg.chunk_samples} samples ({cfg.sample_rate} Hz x {cfg.chunk_duration} s), "
            f"above the NPU's {RAW_MAX_SAMPLES}-sample (16-bit activation) limit: use hybrid or librosa, or "
            "lower --sample-rate / --chunk-duration")
    if cfg.audio_frontend in ("hybrid", "raw", "librosa", "log_mel") and cfg.num_mels % 8:
        problems.append(f"--num-mels {cfg.num_mels} is not a multiple of 8 (NPU channel alignment)")
    if cfg.audio_frontend == "mfcc" and cfg.n_mfcc % 8:
        problems.append(f"--n-mfcc {cfg.n_mfcc} is not a multiple of 8 (NPU channel alignment)")
    return problems

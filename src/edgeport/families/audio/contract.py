"""Input contract of an audio model: how one chunk of audio becomes the model input.

The contract is data in the model config (``AudioModelConfig``):

- ``audio_frontend``: which features (linear STFT, mel, MFCC, raw waveform; ``frontends.FRONTENDS``);
- ``input_scaling``: ``peak`` (the file is peak-normalised when read, features are raw magnitudes: edgeport's
  models normalise in the graph), ``minmax`` (the file is read as it is, each chunk's features are min-max
  scaled to [0, 1]: the seed system's hybrid and librosa models), ``none`` (as read, not scaled);
- ``pad_bins_in_graph`` (hybrid only): ``False`` pads the ``fft_length // 2 + 1`` STFT bins with zero rows to
  a multiple of 8 before the model (edgeport's models, 264 bins in), ``True`` leaves that to the graph (the
  seed system's models, 257 bins in);
- ``input_rank``: the rank of the model input with its batch axis: the core features plus a channel axis of 1
  (``(batch, bins, frames, 1)``, ``(batch, samples, 1)``), or without it (``(batch, samples)``).

Everything that makes model inputs (training, export calibration and validation, evaluation) calls
:func:`load_audio` and :func:`features` here, so one contract serves them all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeport.errors import ConfigError
from edgeport.registry import Registry

if TYPE_CHECKING:
    from edgeport.families.audio.model_config import AudioModelConfig

log = logging.getLogger(__name__)

SCALINGS: Registry[str] = Registry("input scaling", ConfigError)
SCALINGS.register("peak", "file peak-normalised to 1 when read; features unscaled (normalised in the graph)")
SCALINGS.register("minmax", "file read as it is; each chunk's features min-max scaled to [0, 1]")
SCALINGS.register("none", "file read as it is; features unscaled")

#: epsilon of the per-chunk min-max scaling (the seed system's value)
MINMAX_EPS = 1e-10

#: the contract keys of the model config, and the values of edgeport's own models
CONTRACT_KEYS = ("input_scaling", "pad_bins_in_graph", "input_rank")
EDGEPORT_CONTRACT = {"input_scaling": "peak", "pad_bins_in_graph": False}


def seed_contract(frontend: str) -> dict:
    """The contract of the seed system's models (a model config without edgeport's own keys)."""
    return {"input_scaling": "none" if frontend in ("raw", "tf") else "minmax", "pad_bins_in_graph": True}


def core_shape(cfg: AudioModelConfig) -> tuple[int, ...]:
    from edgeport.families.audio.frontends import FRONTENDS

    return tuple(FRONTENDS.get(cfg.audio_frontend).core_shape(cfg))


def default_rank(cfg: AudioModelConfig) -> int:
    """Batch axis + core features + a channel axis of 1."""
    return len(core_shape(cfg)) + 2


def allowed_ranks(cfg: AudioModelConfig) -> tuple[int, int]:
    n = len(core_shape(cfg))
    return n + 1, n + 2


def _padded(cfg: AudioModelConfig) -> bool:
    return cfg.audio_frontend == "hybrid" and not cfg.pad_bins_in_graph


def input_shape(cfg: AudioModelConfig) -> tuple[int, ...]:
    """Model input shape without the batch axis."""
    from edgeport.audio.spectrogram import padded_bins

    shape = list(core_shape(cfg))
    if _padded(cfg):
        shape[0] = padded_bins(cfg.fft_length)
    if cfg.input_rank == len(shape) + 2:
        shape.append(1)
    return tuple(shape)


def normalizes(cfg: AudioModelConfig) -> bool:
    """Whether the contract peak-normalises a file when it is read (``input_scaling`` peak)."""
    return cfg.input_scaling == "peak"


def load_audio(path: Path | str, cfg: AudioModelConfig, *, max_duration: float | None = None) -> np.ndarray:
    """One file as the contract reads it: mono, resampled to ``cfg.sample_rate``, peak-normalised for ``peak``."""
    from edgeport.audio.io import load

    return load(path, cfg.sample_rate, max_duration=max_duration, normalize=normalizes(cfg))


def minmax(x: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min + eps) over the whole chunk: [0, 1]; a constant chunk gives 0."""
    x = x.astype(np.float32, copy=False)
    lo, hi = float(x.min()), float(x.max())
    return ((x - lo) / (hi - lo + MINMAX_EPS)).astype(np.float32)


def features(chunk: np.ndarray, cfg: AudioModelConfig) -> np.ndarray:
    """Model input (no batch axis) for one chunk of ``cfg.chunk_samples`` samples at ``cfg.sample_rate``."""
    from edgeport.audio.spectrogram import padded_bins
    from edgeport.families.audio.frontends import FRONTENDS

    x = FRONTENDS.get(cfg.audio_frontend).features(np.asarray(chunk, np.float32), cfg)
    if cfg.input_scaling == "minmax":
        x = minmax(x)
    if _padded(cfg):
        out = np.zeros((padded_bins(cfg.fft_length), *x.shape[1:]), np.float32)
        out[: x.shape[0]] = x
        x = out
    return x.reshape(input_shape(cfg)).astype(np.float32, copy=False)


def describe(cfg: AudioModelConfig) -> str:
    """One phrase naming the contract, for messages."""
    bins = ""
    if cfg.audio_frontend == "hybrid":
        bins = ", bins padded in the graph" if cfg.pad_bins_in_graph else ", bins padded before the model"
    return (f"{cfg.audio_frontend} frontend, {cfg.sample_rate} Hz, {cfg.chunk_duration:g} s chunks, "
            f"input_scaling {cfg.input_scaling}{bins}, input_rank {cfg.input_rank}")


def _matches(got: tuple, want: tuple) -> bool:
    return len(got) == len(want) and all(g is None or g == w for g, w in zip(got, want, strict=True))


def fixes_for(cfg: AudioModelConfig, got: tuple) -> list[dict]:
    """Contract key changes that make the config's input shape ``got`` (empty: none does)."""
    from itertools import product

    pads = (False, True) if cfg.audio_frontend == "hybrid" else (cfg.pad_bins_in_graph,)
    found = []
    for pad, rank in product(pads, allowed_ranks(cfg)):
        change = {k: v for k, v in (("pad_bins_in_graph", pad), ("input_rank", rank)) if getattr(cfg, k) != v}
        if change and _matches(got, input_shape(cfg.replace(**change))):
            found.append(change)
    return found


def check_input_shape(cfg: AudioModelConfig, got, *, what: str, cfg_source: str) -> None:
    """Refuse (``ConfigError``, one line) a model whose input shape (batch aside; None = any) is not the
    config's; the message names both shapes and the config keys that would make them agree."""
    import json

    got = tuple(None if g is None or (isinstance(g, int) and g < 0) else int(g) for g in got)
    want = input_shape(cfg)
    if _matches(got, want):
        return
    shown = tuple("N" if g is None else g for g in got)
    fixes = fixes_for(cfg, got)
    if fixes:
        need = " or ".join(", ".join(f'"{k}": {json.dumps(v)}' for k, v in f.items()) for f in fixes)
        hint = f"the config would need {need}"
    else:
        hint = "no input contract of this config gives that shape: the config does not belong to this artifact"
    raise ConfigError(f"{what} takes input {shown} per chunk but the model config {cfg_source} describes {want} "
                      f"({describe(cfg)}): {hint}")


def resolve(cfg: AudioModelConfig, got, *, what: str, cfg_source: str) -> AudioModelConfig:
    """The config whose input contract fits a model taking ``got`` (batch aside); ``ConfigError`` otherwise.

    A config with contract keys must match as it is. A config without them (``cfg.contract_from_artifact``:
    the seed system's files) takes the seed system's contract when the shape fits it; a hybrid model taking
    the padded bins (``fft_length // 2 + 1`` rounded up to 8, which only edgeport's models take) gets
    edgeport's contract (bins padded before the model, peak-normalised files); a raw model's rank is read
    from the shape. Anything else is refused, naming both shapes and the keys the config would need.
    """
    got = tuple(None if g is None or (isinstance(g, int) and g < 0) else int(g) for g in got)
    if _matches(got, input_shape(cfg)):
        return cfg.replace(contract_from_artifact=False) if cfg.contract_from_artifact else cfg
    if cfg.contract_from_artifact:
        for fix in fixes_for(cfg, got):
            if fix.get("pad_bins_in_graph") is False:
                fix = {**fix, **EDGEPORT_CONTRACT}
            new = cfg.replace(**fix, contract_from_artifact=False)
            log.info("%s takes input %s: the model config %s (no contract keys) is read with %s", what, got,
                     cfg_source, describe(new))
            return new
    check_input_shape(cfg, got, what=what, cfg_source=cfg_source)
    return cfg


__all__ = ["CONTRACT_KEYS", "EDGEPORT_CONTRACT", "SCALINGS", "check_input_shape", "describe", "features",
           "fixes_for", "input_shape", "load_audio", "minmax", "normalizes", "resolve", "seed_contract"]


def model_input_from_audio(path: Path | str, cfg: AudioModelConfig, *, max_chunks: int | None = None,
                           overlap: float = 0.0, max_duration: float | None = None, return_times: bool = False):
    """Batch of model inputs for an audio file: load (mono, resample, peak-normalise if the contract says so),
    chunk, frontend and the contract's scaling and shape.

    ``max_chunks=None`` gives every chunk in file order (for evaluation; ``overlap`` is the fraction of a
    chunk that consecutive chunks share); an integer gives that many salient chunks (highest short-time
    energy) in file order. ``return_times=True`` (every-chunk mode only) also returns the chunks' start and
    end seconds, (n_chunks, 2).
    """
    from edgeport.audio.chunking import (
        chunk_signal,
        chunk_times_from_starts,
        salient_chunks,
    )

    x = load_audio(path, cfg, max_duration=max_duration)
    if max_chunks is None:
        chunks, starts = chunk_signal(x, cfg.chunk_samples, overlap, return_starts=True)
    else:
        if return_times:
            raise ValueError("return_times needs every chunk (max_chunks=None)")
        chunks = salient_chunks(x, cfg.chunk_samples, max_chunks)
    inputs = np.stack([features(c, cfg) for c in chunks]).astype(np.float32)
    if not return_times:
        return inputs
    return inputs, chunk_times_from_starts(starts, cfg.chunk_samples, x.size, cfg.sample_rate)

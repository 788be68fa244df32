"""Synthetic bird-call datasets: a labelled folder (one sub-folder per species plus ``noise``) for demos/tests.

Species come in pairs that share a frequency band and differ only in the call's time-frequency shape
(upsweep vs downsweep, trill vs steady whistle, pulse train vs warble), so the mean spectrum alone
cannot separate them. ``difficulty`` in [0, 1] pulls every band towards a common centre, widens the
frequency jitter, lowers the SNR floor and adds more overlapping calls of other species.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALL_TYPES = ("upsweep", "downsweep", "trill", "whistle", "pulses", "warble", "stepped", "harmonic")
#: Band centres (Hz) for species pairs; the common centre all bands move towards with difficulty.
PAIR_CENTRES = (3200.0, 5200.0, 4200.0, 2600.0)
COMMON_CENTRE = 4200.0


@dataclass(frozen=True)
class SyntheticSpec:
    n_species: int = 6
    files_per_class: int = 40
    noise_files: int = 40
    duration: float = 4.0
    sample_rate: int = 22050
    difficulty: float = 0.5
    snr_db: tuple[float, float] = (-5.0, 20.0)
    silence_fraction: float = 0.25

    def __post_init__(self):
        if not 1 <= self.n_species <= len(CALL_TYPES):
            raise ValueError(f"n_species must be 1..{len(CALL_TYPES)}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError("difficulty must be in [0, 1]")


def species_names(n: int) -> list[str]:
    return [f"sp{i:02d}_{CALL_TYPES[i]}" for i in range(n)]


def _envelope(n: int, rise: float = 0.1) -> np.ndarray:
    r = max(1, int(n * rise))
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, r))
    env[:r], env[-r:] = ramp, ramp[::-1]
    return env


def _tone(freq: np.ndarray, sr: int) -> np.ndarray:
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def make_call(kind: str, fc: float, bw: float, dur: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One call of ``kind`` around centre ``fc`` (Hz) with bandwidth ``bw``, ``dur`` seconds, peak ~1."""
    n = max(16, int(dur * sr))
    t = np.arange(n) / sr
    lo, hi = fc - bw / 2, fc + bw / 2
    if kind == "upsweep":
        x = _tone(lo + (hi - lo) * t / dur, sr)
    elif kind == "downsweep":
        x = _tone(hi - (hi - lo) * t / dur, sr)
    elif kind == "trill":
        rate = rng.uniform(14, 22)
        x = _tone(np.full(n, fc) + 0.05 * bw * np.sin(2 * np.pi * rate * t), sr)
        x *= (np.sin(2 * np.pi * rate * t) > 0.2).astype(float)
    elif kind == "whistle":
        x = _tone(fc + 0.04 * bw * np.sin(2 * np.pi * rng.uniform(3, 6) * t), sr)
    elif kind == "pulses":
        period = rng.uniform(0.09, 0.13)
        ph = (t % period) / period
        x = _tone(lo + (hi - lo) * np.clip(ph / 0.5, 0, 1), sr) * (ph < 0.5)
    elif kind == "warble":
        x = _tone(fc + 0.5 * bw * np.sin(2 * np.pi * rng.uniform(7, 10) * t), sr)
    elif kind == "stepped":
        steps = rng.integers(3, 5)
        f = hi - (hi - lo) * np.floor(t / dur * steps) / max(1, steps - 1)
        x = _tone(f, sr)
    elif kind == "harmonic":
        f0 = fc / 3
        x = sum(_tone(np.full(n, f0 * k), sr) / k for k in (1, 2, 3, 4)) / 1.6
    else:
        raise ValueError(f"unknown call type {kind}")
    return (x * _envelope(n)).astype(np.float32)


def background(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise (white..brown mixture), occasionally with a low hum; unit RMS."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / sr)
    slope = rng.uniform(0.0, 1.0)  # 0 white, 0.5 pink, 1 brown
    spec = spec / np.maximum(f, 20.0) ** slope
    x = np.fft.irfft(spec, n)
    if rng.random() < 0.3:
        x = x / (np.std(x) + 1e-9) + 0.5 * np.sin(2 * np.pi * rng.uniform(50, 300) * np.arange(n) / sr)
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


class CallSynth:
    """Draws calls for species ``i`` under a SyntheticSpec."""

    def __init__(self, spec: SyntheticSpec):
        self.spec = spec
        d = spec.difficulty
        self.centres = [(1 - d) * PAIR_CENTRES[(i // 2) % len(PAIR_CENTRES)] + d * COMMON_CENTRE
                        for i in range(spec.n_species)]
        self.bw = 1800.0
        self.jitter = 200.0 + 900.0 * d

    def call(self, i: int, rng: np.random.Generator) -> np.ndarray:
        fc = self.centres[i] + rng.uniform(-self.jitter, self.jitter)
        bw = self.bw * rng.uniform(0.7, 1.2)
        return make_call(CALL_TYPES[i], fc, bw, rng.uniform(0.35, 0.9), self.spec.sample_rate, rng)


def make_clip(synth: CallSynth, species: int | None, rng: np.random.Generator) -> np.ndarray:
    """A clip with 1-3 calls of ``species`` at random onsets over background noise (None: noise/silence)."""
    s = synth.spec
    n = int(s.duration * s.sample_rate)
    bg = background(n, s.sample_rate, rng)
    if species is None:
        level = 10 ** (rng.uniform(-60, -45) / 20) if rng.random() < s.silence_fraction else rng.uniform(0.05, 0.5)
        return (bg * level).astype(np.float32)
    sig = np.zeros(n, np.float32)
    for _ in range(int(rng.integers(1, 4))):
        c = synth.call(species, rng)
        start = int(rng.integers(0, max(1, n - c.size)))
        sig[start:start + c.size] += c[: n - start]
    # overlapping calls of other species, quieter (background species, as in field recordings)
    if s.n_species > 1 and rng.random() < 0.1 + 0.3 * s.difficulty:
        other = int(rng.choice([j for j in range(s.n_species) if j != species]))
        c = synth.call(other, rng) * 10 ** (rng.uniform(-14, -8) / 20)
        start = int(rng.integers(0, max(1, n - c.size)))
        sig[start:start + c.size] += c[: n - start]
    active = np.abs(sig) > 1e-3
    p_sig = float(np.mean(sig[active] ** 2)) if active.any() else 1.0
    snr = rng.uniform(*s.snr_db)
    noise_rms = np.sqrt(p_sig / 10 ** (snr / 10))
    x = sig + bg * noise_rms
    return (0.9 * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def generate_dataset(out: Path | str, spec: SyntheticSpec = SyntheticSpec(), *, seed: int = 0,
                     files_per_class: int | None = None, noise_folder: str = "noise",
                     names: list[str] | None = None) -> list[str]:
    """Write ``out/<species>/*.wav`` and ``out/<noise_folder>/*.wav``; returns the species names (``names``:
    the folder names to use for the ``n_species`` species, e.g. the class names of a given model)."""
    from edgeport.audio.io import write_wav

    out = Path(out)
    rng = np.random.default_rng(seed)
    synth = CallSynth(spec)
    if names is not None and len(names) != spec.n_species:
        raise ValueError(f"{len(names)} names for {spec.n_species} species")
    names = list(names) if names is not None else species_names(spec.n_species)
    n_files = files_per_class or spec.files_per_class
    for i, name in enumerate(names):
        for k in range(n_files):
            write_wav(out / name / f"{name}_{k:03d}.wav", make_clip(synth, i, rng), spec.sample_rate)
    if noise_folder and spec.noise_files:
        for k in range(spec.noise_files):
            write_wav(out / noise_folder / f"noise_{k:03d}.wav", make_clip(synth, None, rng), spec.sample_rate)
    return names

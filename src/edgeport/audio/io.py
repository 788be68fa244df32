"""Read audio files (wav/flac/mp3/ogg and whatever libsndfile or audioread can decode) as mono float32."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeport.errors import DataError, MissingDependencyError

log = logging.getLogger(__name__)

#: File suffixes treated as audio when scanning folders.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".au", ".m4a")


class AudioReadError(Exception):
    """One file could not be decoded (counted and skipped by callers)."""


def _soundfile():
    try:
        import soundfile
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MissingDependencyError("soundfile", "Reading audio", "audio") from e
    return soundfile


def is_audio_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def probe(path: Path) -> float:
    """Duration in seconds from the file header; raises AudioReadError if the header is unreadable."""
    sf = _soundfile()
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises several types; all mean "cannot read this file"
        if path.suffix.lower() in (".m4a", ".opus"):
            return -1.0  # decodable only by audioread: duration unknown until decoded
        raise AudioReadError(f"{path}: {e}") from e
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioReadError(f"{path}: no audio frames")
    return info.frames / info.samplerate


def read_audio(path: Path | str, *, max_duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` to a mono float32 signal (channels averaged) and its native sample rate.

    Reads at most ``max_duration`` seconds from the start. Raises AudioReadError on any decode failure.
    """
    path = Path(path)
    sf = _soundfile()
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            frames = f.frames if max_duration is None else min(f.frames, int(max_duration * sr))
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as e:  # noqa: BLE001 - fall back to audioread for formats libsndfile lacks
        data, sr = _read_audioread(path, max_duration, first_error=e)
    if data.size == 0:
        raise AudioReadError(f"{path}: empty audio")
    mono = data.mean(axis=1) if data.ndim == 2 else data
    mono = np.asarray(mono, dtype=np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioReadError(f"{path}: non-finite samples")
    return mono, int(sr)


def _read_audioread(path: Path, max_duration: float | None, first_error: Exception):
    try:
        import audioread
    except ImportError:
        raise AudioReadError(f"{path}: {first_error}") from first_error
    try:
        with audioread.audio_open(str(path)) as f:
            sr, ch = f.samplerate, f.channels
            chunks, total = [], 0
            limit = None if max_duration is None else int(max_duration * sr) * ch
            for buf in f:
                a = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
                chunks.append(a)
                total += a.size
                if limit is not None and total >= limit:
                    break
        data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if limit is not None:
            data = data[:limit]
        return data.reshape(-1, ch), sr
    except Exception as e:
        raise AudioReadError(f"{path}: {first_error}; audioread: {e}") from e


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling (soxr if present, else scipy's polyphase filter)."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    try:
        import soxr

        return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr_in, sr_out)
        return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def resampler_id() -> str:
    """Which resampler ``resample`` uses, with its version (part of the decoded-audio cache key)."""
    try:
        import soxr

        return f"soxr-HQ-{getattr(soxr, '__version__', '?')}"
    except ImportError:
        import scipy

        return f"scipy-resample_poly-{scipy.__version__}"


def peak_normalize(x: np.ndarray, peak: float = 1.0, eps: float = 1e-9) -> np.ndarray:
    """Scale so that max |x| == peak; silence stays silence."""
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m < eps:
        return x.astype(np.float32, copy=False)
    return (x * (peak / m)).astype(np.float32)


def load(path: Path | str, sample_rate: int, *, max_duration: float | None = None,
         normalize: bool = True) -> np.ndarray:
    """Read, mix to mono, resample to ``sample_rate`` and peak-normalise one file."""
    x, sr = read_audio(path, max_duration=max_duration)
    x = resample(x, sr, sample_rate)
    return peak_normalize(x) if normalize else x


@dataclass
class ScanReport:
    """Which files of a folder were usable and which were skipped (with the reason)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def log_skipped(self) -> None:
        if self.skipped:
            shown = ", ".join(p for p, _ in self.skipped[:5])
            more = f" and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            log.warning("Skipped %d unreadable audio file(s): %s%s", len(self.skipped), shown, more)


def scan_files(folder: Path) -> ScanReport:
    """Audio files directly under ``folder`` (sorted) whose header is readable; others are listed as skipped."""
    rep = ScanReport()
    for p in sorted(folder.iterdir()):
        if not is_audio_file(p):
            continue
        try:
            dur = probe(p)
        except AudioReadError as e:
            rep.skipped.append((str(p), str(e).split(": ", 1)[-1]))
            continue
        if dur == 0:
            rep.skipped.append((str(p), "zero length"))
            continue
        rep.files.append(p)
    return rep


def write_wav(path: Path, x: np.ndarray, sample_rate: int) -> None:
    """Write float audio as 16-bit PCM WAV (used by the synthetic generator and tests)."""
    sf = _soundfile()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16")


def require_readable(report: ScanReport, folder: Path) -> None:
    if not report.files:
        raise DataError(f"No readable audio files in {folder} ({len(report.skipped)} unreadable): "
                        "check the files or point to another folder")

"""Every chunk of a recording of any length, without holding the whole recording in memory.

A file of at most ``block_seconds`` (or one libsndfile cannot open) is read whole by ``io.load``; a longer
one is read twice in blocks of ``block_seconds``, resampled per block by a streaming resampler (soxr's
``ResampleStream``, continuous across blocks): the first pass finds its length and peak (``load``'s
peak normalisation needs the whole file's peak), the second cuts the chunks at the same start samples
as ``chunking.chunk_starts`` gives for the whole signal. Memory: a block plus a group of chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgeport.audio.chunking import chunk_signal, chunk_starts
from edgeport.audio.io import AudioReadError, _soundfile, load

log = logging.getLogger(__name__)

#: seconds of audio decoded and resampled at a time
BLOCK_SECONDS = 60.0
#: chunks handed on at a time
GROUP_CHUNKS = 128


def _resampler(sr_in: int, sr_out: int):
    """``f(block, last) -> resampled block``, continuous across calls; None when soxr is missing."""
    if sr_in == sr_out:
        return lambda x, last: x
    try:
        import soxr
    except ImportError:
        return None
    stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
    return lambda x, last: stream.resample_chunk(x, last=last)


def _blocks(path: Path, sample_rate: int, block_seconds: float, max_duration: float | None) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate`` (channels averaged, as ``io.read_audio``)."""
    sf = _soundfile()
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # libsndfile raises several types; all mean "cannot read this file"
        raise AudioReadError(f"{path}: {e}") from e
    with f:
        sr_in = f.samplerate
        frames = f.frames if max_duration is None else min(f.frames, int(max_duration * sr_in))
        resample = _resampler(sr_in, sample_rate)
        step = max(1, int(block_seconds * sr_in))
        done = 0
        while done < frames:
            n = min(step, frames - done)
            try:
                data = f.read(frames=n, dtype="float32", always_2d=True)
            except Exception as e:  # a decode error part-way: the file is skipped
                raise AudioReadError(f"{path}: {e}") from e
            if data.shape[0] == 0:
                break
            done += data.shape[0]
            mono = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
            if not np.all(np.isfinite(mono)):
                raise AudioReadError(f"{path}: non-finite samples")
            out = resample(mono, done >= frames)
            if out.size:
                yield np.asarray(out, dtype=np.float32)
        if done == 0:
            raise AudioReadError(f"{path}: empty audio")


def _whole_file(path: Path, sample_rate: int, block_seconds: float, max_duration: float | None) -> bool:
    """Read at once: short enough, or not seekable by libsndfile, or no streaming resampler installed."""
    sf = _soundfile()
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - e.g. m4a: only audioread decodes it, whole
        return True
    seconds = info.frames / info.samplerate if info.samplerate > 0 else 0.0
    if max_duration is not None:
        seconds = min(seconds, max_duration)
    return seconds <= block_seconds or _resampler(info.samplerate, sample_rate) is None


def iter_chunks(path: Path | str, sample_rate: int, chunk: int, overlap: float = 0.0, *,
                max_duration: float | None = None, block_seconds: float = BLOCK_SECONDS,
                group: int = GROUP_CHUNKS, normalize: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """``(chunks (n, chunk) float32, start samples (n,), file length in samples)`` groups of at most ``group``
    chunks, in file order, of the mono, resampled signal (peak-normalised with ``normalize``, as ``io.load``), cut every
    ``chunk * (1 - overlap)`` samples with the tail covered (``chunking.chunk_signal``). Raises
    AudioReadError when the file cannot be decoded (before any chunk for a streamed file: the first pass
    decodes it all)."""
    path = Path(path)
    if _whole_file(path, sample_rate, block_seconds, max_duration):
        x = load(path, sample_rate, max_duration=max_duration, normalize=normalize)
        chunks, starts = chunk_signal(x, chunk, overlap, return_starts=True)
        for i in range(0, len(starts), group):
            yield chunks[i : i + group], starts[i : i + group], x.size
        return
    n, peak = 0, 0.0
    for b in _blocks(path, sample_rate, block_seconds, max_duration):  # pass 1: length and peak
        n += b.size
        peak = max(peak, float(np.max(np.abs(b))))
    scale = 1.0 / peak if normalize and peak >= 1e-9 else 1.0  # io.peak_normalize: silence stays silence
    starts = chunk_starts(n, chunk, overlap)
    buf, buf_start, i = np.zeros(0, np.float32), 0, 0
    out: list[np.ndarray] = []
    first = 0
    for b in _blocks(path, sample_rate, block_seconds, max_duration):  # pass 2: the chunks
        buf = np.concatenate([buf, b * np.float32(scale)])
        while i < len(starts) and starts[i] + chunk <= buf_start + buf.size:
            s = int(starts[i]) - buf_start
            out.append(buf[s : s + chunk].copy())
            i += 1
            if len(out) == group:
                yield np.stack(out), starts[first:i], n
                out, first = [], i
        keep = int(starts[i]) - buf_start if i < len(starts) else buf.size
        buf, buf_start = buf[keep:], buf_start + keep
    if i < len(starts):
        raise AudioReadError(f"{path}: decoded fewer samples on the second read ({buf_start + buf.size} of {n})")
    if out:
        yield np.stack(out), starts[first:i], n


__all__ = ["BLOCK_SECONDS", "GROUP_CHUNKS", "iter_chunks"]

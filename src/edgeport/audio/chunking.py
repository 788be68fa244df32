"""Fixed-length chunks with overlap, and salient-chunk selection by short-time energy (smart crop)."""

from __future__ import annotations

import numpy as np


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad (centred) or crop (centre) ``x`` to exactly ``n`` samples."""
    if x.size == n:
        return x
    if x.size > n:
        start = (x.size - n) // 2
        return x[start:start + n]
    out = np.zeros(n, dtype=np.float32)
    start = (n - x.size) // 2
    out[start:start + x.size] = x
    return out


def chunk_starts(length: int, chunk: int, overlap: float = 0.5, offset: int = 0) -> np.ndarray:
    """Start indices of chunks of ``chunk`` samples, step ``chunk * (1 - overlap)``, beginning at ``offset``."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError("overlap must be in [0, 1)")
    if length <= chunk:
        return np.zeros(1, dtype=np.int64)
    step = max(1, round(chunk * (1.0 - overlap)))
    starts = np.arange(min(offset, length - chunk), length - chunk + 1, step, dtype=np.int64)
    if starts.size == 0 or starts[-1] + chunk < length:  # cover the tail
        starts = np.append(starts, length - chunk)
    return np.unique(starts)


def chunk_signal(x: np.ndarray, chunk: int, overlap: float = 0.5, *, return_starts: bool = False):
    """All overlapping chunks of ``x`` as an array (n_chunks, chunk); a short signal gives one padded chunk.

    ``return_starts=True`` also returns each chunk's first sample (0 for a padded short signal)."""
    if x.size <= chunk:
        out, starts = fit_length(x, chunk)[None, :], np.zeros(1, dtype=np.int64)
    else:
        starts = chunk_starts(x.size, chunk, overlap)
        out = np.stack([x[s:s + chunk] for s in starts])
    return (out, starts) if return_starts else out


def chunk_times_from_starts(starts, chunk_samples: int, n_samples: int, sample_rate: int) -> np.ndarray:
    """(n_chunks, 2) start/end seconds of chunks beginning at sample ``starts``; an end never passes the
    file's last sample (a short file padded to one chunk ends where its audio ends)."""
    s = np.asarray(starts, dtype=np.float64).reshape(-1)
    end = np.minimum(s + chunk_samples, max(int(n_samples), 0))
    return np.stack([s, np.maximum(end, s)], axis=1) / float(sample_rate)


def short_time_energy(x: np.ndarray, frame: int) -> np.ndarray:
    """Mean squared amplitude of consecutive non-overlapping frames."""
    n = x.size // frame
    if n == 0:
        return np.array([float(np.mean(x ** 2)) if x.size else 0.0])
    return np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)


def energy_cumsum(x: np.ndarray) -> np.ndarray:
    """Cumulative sum of squares with a leading 0 (float64): any window's energy in O(1).

    Squared and summed in place in the one output array (a float32 sample's square is exact in float64)."""
    out = np.empty(x.size + 1, np.float64)
    out[0] = 0.0
    np.square(x, out=out[1:], dtype=np.float64)
    np.cumsum(out[1:], out=out[1:])
    return out


def salient_starts(x: np.ndarray, chunk: int, k: int, *, overlap: float = 0.5,
                   rng: np.random.Generator | None = None, cumsum: np.ndarray | None = None) -> np.ndarray | None:
    """First samples (sorted) of the chunks :func:`salient_chunks` returns, or None when ``x`` is at most one
    chunk long (that chunk is then ``x`` padded)."""
    if x.size <= chunk:
        return None
    step = max(1, round(chunk * (1.0 - overlap)))
    offset = int(rng.integers(0, step)) if rng is not None else 0
    starts = chunk_starts(x.size, chunk, overlap, offset)
    # energy of each candidate from a cumulative sum of squares: O(len) for any number of candidates
    c = energy_cumsum(x) if cumsum is None else cumsum
    energy = (c[starts + chunk] - c[starts]) / chunk
    order = np.argsort(-energy, kind="stable")
    chosen: list[int] = []
    for i in order:
        s = starts[i]
        if all(abs(s - starts[j]) >= chunk // 2 for j in chosen):
            chosen.append(int(i))
        if len(chosen) >= k:
            break
    chosen.sort()
    return starts[chosen]


def salient_chunks(x: np.ndarray, chunk: int, k: int, *, overlap: float = 0.5,
                   rng: np.random.Generator | None = None, cumsum: np.ndarray | None = None) -> np.ndarray:
    """Up to ``k`` chunks with the highest short-time energy, at most half-overlapping each other.

    A signal of at most one chunk gives that chunk padded. With ``rng`` the chunk grid is jittered, so
    reopening a long file yields different (still salient) chunks. ``cumsum``: ``energy_cumsum(x)`` when
    the caller keeps it (the decoded-audio cache does). Returns (n, chunk) float32.
    """
    starts = salient_starts(x, chunk, k, overlap=overlap, rng=rng, cumsum=cumsum)
    if starts is None:
        return fit_length(x, chunk)[None, :].astype(np.float32)
    return np.stack([x[s:s + chunk] for s in starts]).astype(np.float32, copy=False)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0

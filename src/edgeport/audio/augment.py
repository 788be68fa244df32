"""Batch augmentation in numpy: Dirichlet multi-source mixup and SpecAugment masking."""

from __future__ import annotations

import numpy as np


def mixup(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, alpha: float = 0.2,
          probability: float = 0.25, max_sources: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Mix a ``probability`` fraction of the batch with 1-2 other batch items (2-3 sources in all).

    Weights come from Dirichlet(alpha, ..., alpha); labels are the element-wise max of the sources' labels
    (overlapping calls: every species present stays present). ``alpha <= 0`` disables it.
    """
    n = x.shape[0]
    if alpha <= 0 or probability <= 0 or n < 2:
        return x, y
    x_out, y_out = x.copy(), y.copy()
    chosen = np.flatnonzero(rng.random(n) < probability)
    for i in chosen:
        k = int(rng.integers(2, max_sources + 1))
        others = rng.choice(np.delete(np.arange(n), i), size=min(k - 1, n - 1), replace=False)
        idx = np.concatenate([[i], others])
        w = rng.dirichlet(np.full(idx.size, alpha)).astype(x.dtype)
        x_out[i] = np.tensordot(w, x[idx], axes=1)
        y_out[i] = y[idx].max(axis=0)
    return x_out, y_out


def spec_augment(x: np.ndarray, rng: np.random.Generator, *, freq_mask_max: int = 8,
                 time_mask_max: int = 25) -> np.ndarray:
    """One frequency mask (<= freq_mask_max bins) and one time mask (<= time_mask_max frames) per item.

    ``x`` is (batch, bins, frames, 1); masked cells are set to 0 (silence before normalisation).
    """
    if x.ndim != 4:
        return x
    out = x.copy()
    n, bins, frames = x.shape[:3]
    for i in range(n):
        if freq_mask_max > 0:
            f = int(rng.integers(0, min(freq_mask_max, bins) + 1))
            f0 = int(rng.integers(0, bins - f + 1))
            out[i, f0:f0 + f] = 0.0
        if time_mask_max > 0:
            t = int(rng.integers(0, min(time_mask_max, frames) + 1))
            t0 = int(rng.integers(0, frames - t + 1))
            out[i, :, t0:t0 + t] = 0.0
    return out

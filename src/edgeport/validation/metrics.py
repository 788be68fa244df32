"""Agreement metrics between a reference output and an artifact's output (SPEC §3).

Every metric handles near-zero vectors explicitly, so no NaN ever reaches a report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Rows whose reference top-1 leads its runner-up by less than this are near-ties (silence, say):
#: they do not count towards top-1 agreement.
TOP1_MARGIN = 0.05
#: A reference whose largest per-column std across rows is below this barely varies: every gate is vacuous.
DEGENERATE_STD = 1e-3
#: SQNR is capped so that identical outputs give a finite, JSON-safe number.
SQNR_CAP_DB = 300.0
_EPS = 1e-12


@dataclass(frozen=True)
class OutputMetrics:
    """Figures for one output tensor over the rows that ran."""

    rows: int
    max_abs_diff: float
    mean_abs_diff: float
    mse: float
    mae: float
    cosine_mean: float
    cosine_worst: float
    pearson: float
    centred_pearson: float
    sqnr_db: float
    top1_agreement: float | None
    top1_rows: int
    top5_agreement: float | None
    reference_std: float

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def degenerate(self) -> bool:
        return self.reference_std < DEGENERATE_STD


def _rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a.reshape(a.shape[0], -1)


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    both_zero = (na < _EPS) & (nb < _EPS)
    one_zero = (na < _EPS) ^ (nb < _EPS)
    cos = np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, _EPS)
    cos = np.where(both_zero, 1.0, np.where(one_zero, 0.0, cos))
    return np.clip(cos, -1.0, 1.0)


def cosine_rows(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity of two outputs (rows flattened; two zero rows count as 1, one as 0)."""
    return _cosine_rows(_rows(reference), _rows(candidate))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < _EPS and nb < _EPS:
        return 1.0
    if na < _EPS or nb < _EPS:
        return 0.0
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def _topk_agreement(ref: np.ndarray, cand: np.ndarray) -> tuple[float | None, int, float | None]:
    n, d = ref.shape
    if d < 2 or n == 0:
        return None, 0, None
    order = np.argsort(-ref, axis=1, kind="stable")
    lead = ref[np.arange(n), order[:, 0]] - ref[np.arange(n), order[:, 1]]
    clear = lead >= TOP1_MARGIN
    top1 = None
    if clear.any():
        top1 = float(np.mean(order[clear, 0] == np.argmax(cand[clear], axis=1)))
    top5 = None
    if d > 5:
        k = 5
        ref5 = order[:, :k]
        cand5 = np.argsort(-cand, axis=1, kind="stable")[:, :k]
        overlap = [len(set(r) & set(c)) / k for r, c in zip(ref5, cand5, strict=True)]
        top5 = float(np.mean(overlap))
    return top1, int(clear.sum()), top5


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal to quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - cand)^2), capped at
    ``SQNR_CAP_DB`` (identical arrays give the cap, never infinity)."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((ref - np.asarray(candidate, dtype=np.float64)) ** 2))
    if noise < _EPS:
        return SQNR_CAP_DB
    return float(min(SQNR_CAP_DB, 10.0 * np.log10(max(float(np.sum(ref**2)), _EPS) / noise)))


def output_metrics(reference: np.ndarray, candidate: np.ndarray) -> OutputMetrics:
    """Compare two arrays of the same shape, row = first axis."""
    ref, cand = _rows(reference), _rows(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape} vs candidate {cand.shape}")
    if ref.shape[0] == 0:
        raise ValueError("no rows to compare")
    diff = np.abs(ref - cand)
    if ref.shape[1] == 1 and ref.shape[0] > 1:
        # one value per row (a sigmoid score): a row's cosine is only its sign agreement, so the output is
        # judged as one vector over the rows, centred (a constant candidate scores 0, not 1)
        cos = np.array([_pearson(ref, cand)])
    else:
        cos = _cosine_rows(ref, cand)
    sqnr = sqnr_db(ref, cand)
    centred_ref = ref - ref.mean(axis=0, keepdims=True)
    centred_cand = cand - cand.mean(axis=0, keepdims=True)
    top1, top1_rows, top5 = _topk_agreement(ref, cand)
    return OutputMetrics(
        rows=int(ref.shape[0]),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        mse=float(np.mean((ref - cand) ** 2)),
        mae=float(diff.mean()),
        cosine_mean=float(cos.mean()),
        cosine_worst=float(cos.min()),
        pearson=_pearson(ref, cand),
        centred_pearson=_pearson(centred_ref, centred_cand),
        sqnr_db=sqnr,
        top1_agreement=top1,
        top1_rows=top1_rows,
        top5_agreement=top5,
        reference_std=float(ref.std(axis=0).max()) if ref.shape[0] > 1 else 0.0,
    )

"""Multi-label classification metrics on (y_true (n, C) in {0, 1}, y_score (n, C)), in numpy.

Conventions (docs/evaluate.md has the full definitions):

- A row is one file (or clip); a column one class. An all-zero row (noise, silence) is a negative for
  every class and counts everywhere a negative counts.
- Classes with no positive row have no AP, recall or ROC-AUC: they are left out of every macro average
  and listed under ``excluded``; classes with no negative row are left out of the ROC-AUC macro average.
- Ties are handled as scikit-learn does: every row with the same score is on the same side of a threshold.
- Nothing returned is NaN: a figure that does not exist is ``None``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edgeport.errors import DataError

log = logging.getLogger(__name__)

NONE_LABEL = "none"


# ----------------------------------------------------------------------------------------- inputs


def check_inputs(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """(y_true float64 0/1, y_score float64), both (n, C); DataError on any shape or value problem."""
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if s.ndim == 1:
        s = s[:, None]
    if y.ndim != 2 or y.shape != s.shape:
        raise DataError(f"labels {y.shape} and scores {s.shape} must both be (n_rows, n_classes)")
    if y.shape[0] == 0:
        raise DataError("no rows to evaluate")
    y = y.astype(np.float64)
    if not np.all((y == 0) | (y == 1)):
        raise DataError("labels must be 0 or 1")
    if not np.all(np.isfinite(s)):
        raise DataError("scores hold NaN or infinite values")
    return y, s


def _opt(v) -> float | None:
    """float, or None for NaN (a figure that does not exist)."""
    v = float(v)
    return None if not np.isfinite(v) else v


def _mean_or_none(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


# ------------------------------------------------------------------------ sorted-score primitives


@dataclass(frozen=True)
class _Sweep:
    """Per column, the scores sorted high to low and the counts at each distinct score ("group end").

    At a group end ``i`` the threshold ``t = scores[i]`` predicts positive exactly the rows with score
    ``>= t``: ``i + 1`` rows, ``tp[i]`` of them positive, ``fp[i]`` negative.
    """

    scores: np.ndarray  # (n, C) descending
    tp: np.ndarray  # (n, C) cumulative positives
    fp: np.ndarray  # (n, C) cumulative negatives
    end: np.ndarray  # (n, C) bool: last row of a run of equal scores
    tp_prev: np.ndarray  # (n, C) tp at the previous group end (0 before the first)
    fp_prev: np.ndarray  # (n, C)

    @property
    def n_pos(self) -> np.ndarray:
        return self.tp[-1]

    @property
    def n_neg(self) -> np.ndarray:
        return self.fp[-1]


def _sweep(y: np.ndarray, s: np.ndarray) -> _Sweep:
    order = np.argsort(-s, axis=0, kind="stable")
    ss = np.take_along_axis(s, order, axis=0)
    ys = np.take_along_axis(y, order, axis=0)
    tp = np.cumsum(ys, axis=0)
    fp = np.cumsum(1.0 - ys, axis=0)
    end = np.ones(ss.shape, dtype=bool)
    end[:-1] = ss[:-1] != ss[1:]
    zero = np.zeros((1, ss.shape[1]))
    # tp and fp never decrease, so the running max of their values at group ends is the last group end's value
    tp_last = np.maximum.accumulate(np.where(end, tp, 0.0), axis=0)
    fp_last = np.maximum.accumulate(np.where(end, fp, 0.0), axis=0)
    return _Sweep(ss, tp, fp, end, np.vstack([zero, tp_last[:-1]]), np.vstack([zero, fp_last[:-1]]))


def _ap_columns(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Average precision of each column (NaN where a column has no positive)."""
    sw = _sweep(y, s)
    ranks = np.arange(1, y.shape[0] + 1, dtype=np.float64)[:, None]
    contrib = np.where(sw.end, (sw.tp - sw.tp_prev) * sw.tp / ranks, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sw.n_pos > 0, contrib.sum(axis=0) / sw.n_pos, np.nan)


def _ap_weighted(ys: np.ndarray, end: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AP per column of rows already sorted by score (``ys``, group ends ``end``), row ``i`` counted
    ``w[i]`` times: the AP of the data set in which each row is repeated that often."""
    wy = w * ys
    tp = np.cumsum(wy, axis=0)
    predicted = np.cumsum(w, axis=0)
    if end.all():  # no ties: each row is its own threshold
        gain = wy
    else:
        tp_last = np.maximum.accumulate(np.where(end, tp, 0.0), axis=0)
        gain = np.where(end, tp - np.vstack([np.zeros((1, ys.shape[1])), tp_last[:-1]]), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(gain > 0, gain * tp / predicted, 0.0)
        return np.where(tp[-1] > 0, contrib.sum(axis=0) / tp[-1], np.nan)


def _auc_columns(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC-AUC of each column (NaN where a column lacks positives or negatives); ties count one half."""
    sw = _sweep(y, s)
    pairs = np.where(sw.end, (sw.fp - sw.fp_prev) * (sw.tp_prev + 0.5 * (sw.tp - sw.tp_prev)), 0.0)
    denom = sw.n_pos * sw.n_neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, pairs.sum(axis=0) / denom, np.nan)


# ------------------------------------------------------------------------------- public metrics


def average_precision(y_true, y_score) -> np.ndarray:
    """Per-class AP = sum over thresholds of (R_k - R_(k-1)) * P_k (no interpolation); NaN for no positives."""
    y, s = check_inputs(y_true, y_score)
    return _ap_columns(y, s)


def roc_auc(y_true, y_score) -> np.ndarray:
    """Per-class ROC-AUC (probability that a positive outscores a negative); NaN when undefined."""
    y, s = check_inputs(y_true, y_score)
    return _auc_columns(y, s)


def roc_auc_macro(y_true, y_score) -> float:
    """Mean of the per-class ROC-AUC over the classes that have positives and negatives (NaN when none has,
    or when there are no rows). Labels above 0.5 count as positives: training batches mixed by mixup hold
    blended labels."""
    y = np.asarray(y_true)
    if y.size == 0:
        return float("nan")
    mean = _mean_or_none(roc_auc(y > 0.5, y_score))
    return float("nan") if mean is None else mean


def roc_auc_micro(y_true, y_score) -> float | None:
    """ROC-AUC of all (row, class) pairs pooled into one binary problem."""
    y, s = check_inputs(y_true, y_score)
    return _opt(_auc_columns(y.reshape(-1, 1), s.reshape(-1, 1))[0])


def cmap(y_true, y_score) -> float | None:
    """Class-wise mean AP: mean of per-class AP over classes with at least one positive."""
    return _mean_or_none(average_precision(y_true, y_score))


def sample_map(y_true, y_score) -> float | None:
    """Sample-wise mean AP: for each row with a positive, the AP of ranking that row's classes by score
    (how well the true species of one file come first); mean over those rows. All-zero rows are left out
    (they have nothing to rank). Equals scikit-learn's ``average_precision_score(average="samples")``
    on the rows with a positive."""
    y, s = check_inputs(y_true, y_score)
    keep = y.sum(axis=1) > 0
    if not keep.any():
        return None
    return _mean_or_none(_ap_columns(y[keep].T, s[keep].T))


def prf_at_threshold(y_true, y_score, threshold: float | np.ndarray = 0.5) -> dict:
    """Precision, recall, F1 with ``score >= threshold`` as positive (a scalar, or one per class).

    Per class: precision = TP/(TP+FP) (0 when nothing is predicted), recall = TP/(TP+FN), F1 =
    2TP/(2TP+FP+FN). Micro: the counts summed over every class (classes without positives add their
    false positives). Macro: the mean of the per-class figures over classes with a positive.
    """
    y, s = check_inputs(y_true, y_score)
    t = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (s.shape[1],))
    pred = s >= t
    pos = y > 0
    tp = np.sum(pred & pos, axis=0).astype(np.float64)
    fp = np.sum(pred & ~pos, axis=0).astype(np.float64)
    fn = np.sum(~pred & pos, axis=0).astype(np.float64)
    has_pos = (tp + fn) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(has_pos, tp / (tp + fn), np.nan)
        f1 = np.where(has_pos, 2 * tp / (2 * tp + fp + fn), np.nan)
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    return {
        "precision_micro": float(TP / (TP + FP)) if TP + FP > 0 else 0.0,
        "recall_micro": float(TP / (TP + FN)) if TP + FN > 0 else None,
        "f1_micro": float(2 * TP / (2 * TP + FP + FN)) if TP + FN > 0 else None,
        "precision_macro": _mean_or_none(precision[has_pos]),
        "recall_macro": _mean_or_none(recall[has_pos]),
        "f1_macro": _mean_or_none(f1[has_pos]),
        "per_class": {
            "precision": [float(v) for v in precision],
            "recall": [_opt(v) for v in recall],
            "f1": [_opt(v) for v in f1],
            "tp": tp.astype(int).tolist(),
            "fp": fp.astype(int).tolist(),
            "fn": fn.astype(int).tolist(),
        },
    }


def _best_f1(sw: _Sweep) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the threshold (a score value; ``>=`` is positive) with the highest F1, and that F1.
    Of equal F1s the highest threshold wins. NaN for columns without positives."""
    n = sw.scores.shape[0]
    predicted = np.arange(1, n + 1, dtype=np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(sw.end, 2 * sw.tp / (sw.n_pos + predicted), -1.0)
    best = np.argmax(f1, axis=0)
    cols = np.arange(sw.scores.shape[1])
    ok = sw.n_pos > 0
    return np.where(ok, sw.scores[best, cols], np.nan), np.where(ok, f1[best, cols], np.nan)


def optimise_thresholds(y_true, y_score) -> dict:
    """Thresholds maximising F1: one per class (classes with a positive) and one global (micro F1).

    A threshold is the lowest score still called positive, so ``score >= threshold`` reproduces the
    F1 reported; it is tuned on the data it is reported on, so it flatters the F1 (use a held-out split
    to choose thresholds for deployment).
    """
    y, s = check_inputs(y_true, y_score)
    t_cls, f1_cls = _best_f1(_sweep(y, s))
    t_glob, f1_glob = _best_f1(_sweep(y.reshape(-1, 1), s.reshape(-1, 1)))
    has_pos = np.isfinite(t_cls)
    # classes without positives keep the +inf threshold (never positive) when the per-class set is applied
    applied = np.where(has_pos, t_cls, np.inf)
    at_class = prf_at_threshold(y, s, applied)
    g_t = _opt(t_glob[0])
    at_glob = prf_at_threshold(y, s, np.inf if g_t is None else g_t)
    return {
        "per_class": {"threshold": [_opt(v) for v in t_cls], "f1": [_opt(v) for v in f1_cls]},
        "per_class_f1_macro": _mean_or_none(f1_cls),
        "per_class_f1_micro": at_class["f1_micro"],
        "global": {"threshold": g_t, "f1_micro": _opt(f1_glob[0]), "precision_micro": at_glob["precision_micro"],
                   "recall_micro": at_glob["recall_micro"], "f1_macro": at_glob["f1_macro"]},
    }


def det_curve(y_true, y_score, *, max_points: int = 500) -> dict:
    """Micro-averaged DET curve: false positive rate vs false negative rate at every distinct score
    threshold over all (row, class) pairs, thresholds high to low, thinned to ``max_points`` (first and
    last kept); plus the equal error rate (linear interpolation where FPR crosses FNR)."""
    y, s = check_inputs(y_true, y_score)
    sw = _sweep(y.reshape(-1, 1), s.reshape(-1, 1))
    P, N = float(sw.n_pos[0]), float(sw.n_neg[0])
    if P == 0 or N == 0:
        return {"threshold": [], "fpr": [], "fnr": [], "eer": None, "n_points_total": 0,
                "note": "needs both positive and negative (row, class) pairs"}
    end = sw.end[:, 0]
    thr = sw.scores[end, 0]
    fpr = sw.fp[end, 0] / N
    fnr = 1.0 - sw.tp[end, 0] / P
    d = fpr - fnr  # increases as the threshold falls
    k = int(np.searchsorted(d, 0.0, side="left"))
    if k == 0:
        eer = (fpr[0] + fnr[0]) / 2
    elif k >= d.size:
        eer = (fpr[-1] + fnr[-1]) / 2
    else:
        w = -d[k - 1] / (d[k] - d[k - 1])
        eer = fpr[k - 1] + w * (fpr[k] - fpr[k - 1])
    total = thr.size
    if total > max_points:
        idx = np.unique(np.linspace(0, total - 1, max_points).round().astype(int))
        thr, fpr, fnr = thr[idx], fpr[idx], fnr[idx]
    return {"threshold": thr.tolist(), "fpr": fpr.tolist(), "fnr": fnr.tolist(), "eer": float(eer),
            "n_points_total": int(total)}


def confusion_top1(y_true, y_score, class_names: list[str], threshold: float = 0.5) -> dict:
    """Top-1 confusion matrix over rows with exactly one positive and all-zero rows (true ``none``).

    Predicted class: the arg-max score, or ``none`` when the top score is below ``threshold``. The last
    row and column are ``none``; rows with two or more positives are left out and counted.
    """
    y, s = check_inputs(y_true, y_score)
    n, C = y.shape
    none = NONE_LABEL if NONE_LABEL not in class_names else f"({NONE_LABEL})"
    n_pos = y.sum(axis=1)
    use = n_pos <= 1
    true_idx = np.where(n_pos == 1, np.argmax(y, axis=1), C)
    pred_idx = np.where(s.max(axis=1) >= threshold, np.argmax(s, axis=1), C)
    matrix = np.zeros((C + 1, C + 1), dtype=np.int64)
    np.add.at(matrix, (true_idx[use], pred_idx[use]), 1)
    used = int(use.sum())
    return {
        "labels": [*class_names, none],
        "matrix": matrix.tolist(),
        "threshold": float(threshold),
        "rows_used": used,
        "rows_multi_label_excluded": int(n - used),
        "accuracy": float(np.trace(matrix) / used) if used else None,
    }


def bootstrap_ap_ci(y_true, y_score, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                    progress: bool = False) -> dict:
    """Per-class AP with a percentile bootstrap interval: rows resampled with replacement ``n_boot``
    times (``numpy.random.default_rng(seed)``); a resample without a positive for a class is skipped for
    that class, and ``n_valid`` says how many were used."""
    y, s = check_inputs(y_true, y_score)
    if n_boot < 1:
        raise DataError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < ci < 1:
        raise DataError(f"ci must be in (0, 1), got {ci}")
    n, C = y.shape
    rng = np.random.default_rng(seed)
    # a resample is the original rows weighted by how often each was drawn: sort once, reweight each time
    order = np.argsort(-s, axis=0, kind="stable")
    ss = np.take_along_axis(s, order, axis=0)
    ys = np.take_along_axis(y, order, axis=0)
    end = np.ones(ss.shape, dtype=bool)
    end[:-1] = ss[:-1] != ss[1:]
    boots = np.empty((n_boot, C))
    it = range(n_boot)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="bootstrap AP", unit="resample", leave=False)
    for b in it:
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        boots[b] = _ap_weighted(ys, end, counts[order])
    valid = np.isfinite(boots)
    n_valid = valid.sum(axis=0)
    lo_q, hi_q = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    lo = np.full(C, np.nan)
    hi = np.full(C, np.nan)
    for c in np.flatnonzero(n_valid):
        v = boots[valid[:, c], c]
        lo[c], hi[c] = np.percentile(v, lo_q), np.percentile(v, hi_q)
    return {
        "ap": [_opt(v) for v in _ap_columns(y, s)],
        "ci_low": [_opt(v) for v in lo],
        "ci_high": [_opt(v) for v in hi],
        "n_valid": n_valid.astype(int).tolist(),
        "n_boot": int(n_boot),
        "ci": float(ci),
        "seed": int(seed),
    }


def multilabel_metrics(y_true, y_score, class_names: list[str], *, threshold: float = 0.5,
                       species_report: bool = False, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                       det_points: int = 500, progress: bool = False) -> dict:
    """Every figure edgeport reports for one set of (file) scores, JSON-ready (no NaN)."""
    y, s = check_inputs(y_true, y_score)
    n, C = y.shape
    if len(class_names) != C:
        raise DataError(f"{len(class_names)} class names for {C} score columns")
    n_pos = y.sum(axis=0)
    n_neg = n - n_pos
    ap = _ap_columns(y, s)
    auc = _auc_columns(y, s)
    prf = prf_at_threshold(y, s, threshold)
    opt = optimise_thresholds(y, s)
    boot = bootstrap_ap_ci(y, s, n_boot=n_boot, ci=ci, seed=seed, progress=progress) if species_report else None
    per_class = []
    for c, name in enumerate(class_names):
        row = {
            "class": name,
            "n_positives": int(n_pos[c]),
            "ap": _opt(ap[c]),
            "roc_auc": _opt(auc[c]),
            "precision": prf["per_class"]["precision"][c],
            "recall": prf["per_class"]["recall"][c],
            "f1": prf["per_class"]["f1"][c],
            "best_threshold": opt["per_class"]["threshold"][c],
            "best_f1": opt["per_class"]["f1"][c],
        }
        if boot is not None:
            row.update(ap_ci_low=boot["ci_low"][c], ap_ci_high=boot["ci_high"][c], ap_boot_valid=boot["n_valid"][c])
        per_class.append(row)
    row_pos = y.sum(axis=1)
    no_pos = [class_names[c] for c in np.flatnonzero(n_pos == 0)]
    no_neg = [class_names[c] for c in np.flatnonzero(n_neg == 0)]
    if no_pos:
        log.info("%d classes have no positive row and are left out of macro averages", len(no_pos))
    return {
        "n_rows": int(n),
        "n_classes": int(C),
        "n_noise_rows": int(np.sum(row_pos == 0)),
        "n_multi_label_rows": int(np.sum(row_pos > 1)),
        "threshold": float(threshold),
        "roc_auc_macro": _mean_or_none(auc),
        "roc_auc_micro": _opt(_auc_columns(y.reshape(-1, 1), s.reshape(-1, 1))[0]),
        "cmap": _mean_or_none(ap),
        "map": sample_map(y, s),
        "precision_micro": prf["precision_micro"],
        "recall_micro": prf["recall_micro"],
        "f1_micro": prf["f1_micro"],
        "precision_macro": prf["precision_macro"],
        "recall_macro": prf["recall_macro"],
        "f1_macro": prf["f1_macro"],
        "optimised_thresholds": {"global": opt["global"], "per_class_f1_macro": opt["per_class_f1_macro"],
                                 "per_class_f1_micro": opt["per_class_f1_micro"]},
        "det": det_curve(y, s, max_points=det_points),
        "confusion": confusion_top1(y, s, list(class_names), threshold),
        "per_class": per_class,
        "species_report": None if boot is None else {"n_boot": boot["n_boot"], "ci": boot["ci"], "seed": boot["seed"]},
        "excluded": {"no_positives": no_pos, "no_negatives": no_neg},
    }


__all__ = [
    "NONE_LABEL",
    "average_precision",
    "bootstrap_ap_ci",
    "check_inputs",
    "cmap",
    "confusion_top1",
    "det_curve",
    "multilabel_metrics",
    "optimise_thresholds",
    "prf_at_threshold",
    "roc_auc",
    "roc_auc_micro",
    "sample_map",
]

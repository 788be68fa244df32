"""Mahalanobis OOD detector on the species model's embedding, saved without pickle.

Mean and a shrinkage covariance (scikit-learn Ledoit-Wolf or OAS: a plain covariance is singular when there are
fewer images than embedding dimensions) and its inverse; threshold = the ``percentile``-th percentile of the
training distances, stored as that distance. Files: ``ood-detector.npz`` (mean, inv_cov), ``ood-detector.json``
(threshold, percentile, estimator, sizes, the npz's sha256) and ``ood-detector.onnx`` (embedding -> distance,
is_ood) whose distance matches numpy's within 1e-4 relative.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, SourceError
from edgeport.fileio import (
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_json,
    sha256_path,
)

NPZ, JSON, ONNX = "ood-detector.npz", "ood-detector.json", "ood-detector.onnx"
FILES = (NPZ, JSON, ONNX)
ESTIMATORS = ("ledoit_wolf", "oas")
ONNX_REL_TOL = 1e-4


@dataclass
class OODDetector:
    mean: np.ndarray  # (D,) float64
    inv_cov: np.ndarray  # (D, D) float64
    threshold: float  # a distance
    percentile: float
    estimator: str
    n_fit: int
    shrinkage: float | None = None

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def distance(self, emb: np.ndarray) -> np.ndarray:
        emb = np.asarray(emb, np.float64)
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise ConfigError(f"the OOD detector takes ({self.dim},)-dim embeddings, got shape {emb.shape[1:]}")
        c = emb - self.mean
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", c, self.inv_cov, c), 0.0))

    def is_ood(self, emb: np.ndarray) -> np.ndarray:
        return self.distance(emb) > self.threshold

    def save(self, folder: Path, *, opset: int = 18, extra: dict | None = None) -> dict[str, Path]:
        from edgeport.families.hierarchy.graphs import ood_graph

        folder = Path(folder)
        atomic_save_npz(folder / NPZ, mean=self.mean, inv_cov=self.inv_cov)
        atomic_write_bytes(folder / ONNX, ood_graph(self.mean, self.inv_cov, self.threshold, opset=opset)
                           .SerializeToString())
        atomic_write_json(folder / JSON, {
            "kind": "mahalanobis", "embedding_dim": self.dim, "threshold": float(self.threshold),
            "threshold_is": f"the {self.percentile:g}th percentile of the training distances",
            "percentile": float(self.percentile), "estimator": self.estimator, "shrinkage": self.shrinkage,
            "n_fit": int(self.n_fit), "arrays": NPZ, "arrays_sha256": sha256_path(folder / NPZ), "onnx": ONNX,
            "onnx_outputs": {"distance": "float32 (batch,)", "is_ood": "bool (batch,): distance > threshold"},
            **(extra or {}),
        })
        return {"npz": folder / NPZ, "json": folder / JSON, "onnx": folder / ONNX}


def fit_ood(embeddings: np.ndarray, *, percentile: float = 95.0, estimator: str = "ledoit_wolf") -> OODDetector:
    from sklearn.covariance import OAS, LedoitWolf

    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown covariance estimator '{estimator}'; choose {ESTIMATORS}")
    if not 0 < float(percentile) < 100:
        raise ConfigError(f"--ood-percentile must be between 0 and 100, got {percentile}")
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ConfigError(f"the OOD detector needs at least 2 embeddings as (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError("the embeddings hold NaN or infinite values")
    est = (LedoitWolf() if estimator == "ledoit_wolf" else OAS()).fit(x)
    inv = np.linalg.inv(est.covariance_)
    det = OODDetector(mean=est.location_.astype(np.float64), inv_cov=inv, threshold=0.0, percentile=float(percentile),
                      estimator=estimator, n_fit=int(x.shape[0]), shrinkage=float(est.shrinkage_))
    det.threshold = float(np.percentile(det.distance(x), percentile))
    return det


def load_ood(folder: Path, *, embedding_dim: int | None = None) -> OODDetector:
    """Read ``ood-detector.json`` + ``.npz`` (no pickle: ``allow_pickle=False``); refuse another model's size."""
    folder = Path(folder)
    meta_path = folder / JSON if folder.is_dir() else folder
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"OOD detector not found: {meta_path}") from None
    except ValueError as e:
        raise SourceError(f"{meta_path} is not valid JSON ({e})") from None
    npz = meta_path.parent / meta.get("arrays", NPZ)
    try:
        with np.load(npz, allow_pickle=False) as z:
            mean, inv = z["mean"], z["inv_cov"]
    except (OSError, KeyError, ValueError) as e:
        raise SourceError(f"{npz} is not a readable OOD detector array file ({e})") from None
    if mean.shape != (meta.get("embedding_dim"),) or inv.shape != (mean.shape[0], mean.shape[0]):
        raise SourceError(f"{npz} holds arrays {mean.shape}/{inv.shape} but {meta_path.name} says "
                          f"{meta.get('embedding_dim')} dimensions")
    if embedding_dim is not None and mean.shape[0] != int(embedding_dim):
        raise SourceError(f"{meta_path} was fitted on {mean.shape[0]}-dim embeddings but this model's embedding has "
                          f"{embedding_dim}; refit it with: edgeport ood fit --model-dir DIR --images FOLDER")
    return OODDetector(mean=mean.astype(np.float64), inv_cov=inv.astype(np.float64), threshold=float(meta["threshold"]),
                       percentile=float(meta["percentile"]), estimator=str(meta["estimator"]),
                       n_fit=int(meta["n_fit"]), shrinkage=meta.get("shrinkage"))


def onnx_distance(folder: Path, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ood-detector.onnx`` run by edgeport's ONNX Runtime runner -> (distance, is_ood)."""
    from edgeport.runtimes.onnxruntime import OrtRunner

    out = OrtRunner.open(Path(folder) / ONNX).infer({"embedding": np.asarray(emb, np.float32)})
    return out["distance"], out["is_ood"]


def check_onnx(folder: Path, det: OODDetector, emb: np.ndarray) -> dict:
    """The ONNX distance against numpy's, relative: ``|onnx - numpy| / max(numpy, 1e-6)``."""
    ref = det.distance(emb)
    got, flag = onnx_distance(folder, emb)
    rel = np.abs(got.astype(np.float64) - ref) / np.maximum(np.abs(ref), 1e-6)
    flags_agree = float(np.mean(flag == (ref > det.threshold)))
    return {"max_rel_diff": float(rel.max()), "gate": ONNX_REL_TOL, "rows": len(ref),
            "flag_agreement": flags_agree, "passed": bool(rel.max() <= ONNX_REL_TOL)}


def rejection_scores(det: OODDetector, in_emb: np.ndarray, out_emb: np.ndarray) -> dict:
    """Precision and recall of rejecting ``out_emb`` (not plants) against ``in_emb`` (held-out plants)."""
    fi, fo = det.is_ood(in_emb), det.is_ood(out_emb)
    tp, fp = int(fo.sum()), int(fi.sum())
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / len(fo), "plants_rejected": fp,
            "plants": len(fi), "others_rejected": tp, "others": len(fo)}

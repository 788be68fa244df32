"""Score a saved model afresh on the validation split its training used (what ``X_history.csv`` claims for
the best epoch can be checked against the file on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def saved_model_val_roc_auc(cfg, model_path: Path | str | None = None) -> float:
    """Macro ROC-AUC (edgeport.evaluation.metrics, classes with positives and negatives) of ``model_path``
    (default ``cfg.checkpoint``), loaded from disk, on the validation chunks of ``cfg``'s folder: the split,
    salient chunks and labels training builds (``cfg``: the TrainConfig the model was trained with)."""
    from edgeport.audio.dataset import scan_dataset
    from edgeport.evaluation.metrics import roc_auc_macro
    from edgeport.families.audio.loading import load_trained_model
    from edgeport.training.data import load_fixed, split_dataset

    model, mcfg = load_trained_model(model_path or cfg.checkpoint)
    ds = scan_dataset(cfg.data_path_train, max_samples=cfg.max_samples, seed=cfg.seed)
    val = ds.subset(split_dataset(ds, cfg.val_split, cfg.seed)[1])
    x, y, _ = load_fixed(val.files, val.labels, json.dumps(mcfg.to_dict()), chunks_per_file=cfg.max_chunks_per_file,
                         max_duration=cfg.max_duration)
    if len(x) == 0:
        return float("nan")
    p = np.asarray(model.predict(x, batch_size=64, verbose=0))  # the full model: sigmoid probabilities
    return roc_auc_macro(y, p)

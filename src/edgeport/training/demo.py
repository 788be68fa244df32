"""The audio part of ``edgeport demo``: synthesise a bird-call dataset, train a small DS-CNN, compare a baseline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edgeport.fileio import atomic_write_json

log = logging.getLogger(__name__)

#: Demo dataset: 6 species + noise, 40 training files each, 20 held-out test files each.
DEMO_DIFFICULTY = 0.6
DEMO_TRAIN_FILES = 40
DEMO_TEST_FILES = 20


def demo_train_config(data: Path, checkpoint: Path, *, seed: int = 0, num_workers: int | None = None, **overrides):
    """The small, fast DS-CNN the demo trains (16 kHz, 2 s chunks, alpha 0.5): ~2 min on 2 cores."""
    from edgeport.training.config import TrainConfig
    from edgeport.training.data import default_num_workers

    kw = {"data_path_train": str(data), "checkpoint_path": str(checkpoint), "sample_rate": 16000,
          "chunk_duration": 2.0, "spec_width": 128, "num_mels": 32, "fft_length": 256, "alpha": 0.5,
          "embeddings_size": 128, "dropout": 0.2, "epochs": 40, "learning_rate": 3e-3, "batch_size": 32,
          "max_chunks_per_file": 2, "seed": seed, "progress": False,
          "force": True,  # the demo's own folder: `edgeport demo` refuses a non-empty --outdir without --force
          "num_workers": min(2, default_num_workers()) if num_workers is None else num_workers}
    kw.update(overrides)
    return TrainConfig(**kw)


def evaluate_files(model, cfg, files: list[str], labels: np.ndarray, *, max_chunks: int = 2) -> float:
    """File-level macro ROC-AUC: max over each file's salient chunks' probabilities."""
    from edgeport.evaluation.metrics import roc_auc_macro
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.training.trainer import predict_logits

    xs = [model_input_from_audio(f, cfg, max_chunks=max_chunks) for f in files]
    p_chunks = predict_logits(model, np.concatenate(xs))  # batched inference; the full model outputs probabilities
    probs, i = [], 0
    for x in xs:
        probs.append(p_chunks[i:i + len(x)].max(axis=0))
        i += len(x)
    return roc_auc_macro(labels, np.stack(probs))


def train_demo(outdir: Path, *, seed: int = 0, epochs: int | None = None) -> dict:
    """Synthesise train + test folders under ``outdir``, train the demo DS-CNN, compute the baseline.

    Returns paths (model, model_config, labels, data folders), val/test ROC-AUC of the DS-CNN, the
    mean-spectrum baseline's test ROC-AUC, and timings in seconds.
    """
    from edgeport.audio.dataset import scan_dataset
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.families.audio.loading import load_trained_model
    from edgeport.training.baseline import mean_spectrum_baseline
    from edgeport.training.trainer import train

    t0 = time.time()
    outdir = Path(outdir)
    train_dir, test_dir = outdir / "data" / "train", outdir / "data" / "test"
    spec = SyntheticSpec(difficulty=DEMO_DIFFICULTY, files_per_class=DEMO_TRAIN_FILES, noise_files=DEMO_TRAIN_FILES)
    log.info("Synthesising the demo bird-call dataset in %s", outdir / "data")
    generate_dataset(train_dir, spec, seed=seed)
    test_spec = SyntheticSpec(difficulty=DEMO_DIFFICULTY, files_per_class=DEMO_TEST_FILES,
                              noise_files=DEMO_TEST_FILES)
    generate_dataset(test_dir, test_spec, seed=seed + 1000)
    t_data = time.time() - t0

    overrides = {"epochs": epochs} if epochs else {}
    cfg = demo_train_config(train_dir, outdir / "model" / "demo_dscnn.keras", seed=seed, **overrides)
    t1 = time.time()
    result = train(cfg)
    t_train = time.time() - t1

    model, mcfg = load_trained_model(result.model_path)
    test_ds = scan_dataset(test_dir, class_names=list(mcfg.class_names))
    test_auc = evaluate_files(model, mcfg, test_ds.files, test_ds.labels)
    t2 = time.time()
    train_ds = scan_dataset(train_dir)
    base_auc = mean_spectrum_baseline(train_ds.files, train_ds.labels, test_ds.files, test_ds.labels, seed=seed,
                                      sample_rate=mcfg.sample_rate)
    t_base = time.time() - t2
    summary = {
        "model_path": str(result.model_path), "model_config_path": str(result.config_path),
        "labels_path": str(result.paths["labels"]), "history_path": str(result.paths["history"]),
        "train_dir": str(train_dir), "test_dir": str(test_dir), "class_names": list(mcfg.class_names),
        "val_roc_auc": result.val_roc_auc, "test_roc_auc": test_auc, "baseline_roc_auc": base_auc,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "seconds": time.time() - t0, "seconds_data": t_data, "seconds_train": t_train, "seconds_baseline": t_base,
        "difficulty": DEMO_DIFFICULTY,
    }
    (outdir / "model").mkdir(parents=True, exist_ok=True)
    atomic_write_json(outdir / "model" / "demo_summary.json", summary)
    log.info("Demo DS-CNN: val ROC-AUC %.3f, test ROC-AUC %.3f; mean-spectrum baseline %.3f (%.0f s)",
             result.val_roc_auc, test_auc, base_auc, summary["seconds"])
    return summary

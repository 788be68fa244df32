"""``train(TrainConfig)``: the DS-CNN training loop with QAT and linear-probe modes, resumable.

Writes beside ``X.keras``: ``X_model_config.json``, ``X_labels.txt``, ``X_history.csv``, ``X_curves.png`` and
``X_train_state.json`` (``X_qat*`` / ``X_probe*`` in those modes). An existing set is replaced only with
``force`` (``resume`` continues it). Files are staged (``fileio.OutputPlan``) and moved into place together
after each epoch, so the folder always holds one whole set: the earlier one, or this run's at its last
completed epoch; an interrupt (Ctrl-C) in epoch 1 leaves the earlier set untouched.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, DataError
from edgeport.evaluation.metrics import roc_auc_macro
from edgeport.fileio import (
    OutputPlan,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    remove_path,
)
from edgeport.training.config import TrainConfig

log = logging.getLogger(__name__)

#: ``val_*``: the model as it would be saved (BatchNorm statistics re-estimated for the epoch's weights);
#: ``val_roc_auc_moving_stats``: the same weights with the moving statistics training left (before that)
HISTORY_FIELDS = ("epoch", "loss", "roc_auc", "val_loss", "val_roc_auc", "val_roc_auc_moving_stats",
                  "learning_rate", "seconds")


@dataclass
class TrainResult:
    """Where the outputs went and how training ended."""

    paths: dict[str, Path]
    class_names: list[str]
    history: list[dict]
    epochs_run: int
    best_epoch: int
    val_loss: float
    val_roc_auc: float
    seconds: float
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    stopped_early: bool = False
    #: the best epoch's BatchNorm re-estimation: epoch, batches, validation loss / ROC-AUC with the moving
    #: statistics (before) and re-estimated ones (after, the saved model's); None: not run
    batchnorm: dict | None = None

    @property
    def model_path(self) -> Path:
        return self.paths["model"]

    @property
    def config_path(self) -> Path:
        return self.paths["config"]


def output_paths(checkpoint: Path, suffix: str = "") -> dict[str, Path]:
    """``X.keras`` -> the model and its side files (``suffix`` '_qat' / '_probe' for those modes)."""
    checkpoint = Path(checkpoint)
    stem = f"{checkpoint.stem}{suffix}"
    d = checkpoint.parent
    return {"model": d / f"{stem}.keras", "config": d / f"{stem}_model_config.json",
            "labels": d / f"{stem}_labels.txt", "history": d / f"{stem}_history.csv",
            "curves": d / f"{stem}_curves.png", "state": d / f"{stem}_train_state.json"}


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow/Keras and make TF ops deterministic."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    os.environ["TF_DETERMINISTIC_OPS"] = "1"
    random.seed(seed)
    np.random.seed(seed)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError) as e:  # older TF, or already configured
        log.debug("op determinism not enabled: %s", e)


def _check_resumable(out: dict[str, Path], mcfg) -> None:
    """--resume needs the model that this run's options describe (same classes, frontend, shape)."""
    from edgeport.families.audio.model_config import read_model_config

    if not out["config"].is_file():
        raise ConfigError(f"--resume: {out['config'].name} is missing beside {out['model'].name}; pass --force "
                          "to start over")
    saved = read_model_config(out["config"]).to_dict()
    differ = sorted(k for k, v in mcfg.to_dict().items() if saved.get(k) != v)
    if differ:
        raise ConfigError(f"--resume: {out['model'].name} was trained with other {', '.join(differ[:6])} than this "
                          "run's options and data; pass the same options, or --force to start over")


def save_model_atomic(model, path: Path) -> None:
    """Save ``.keras`` under a temporary name, then rename (no half-written checkpoint on interrupt)."""
    with atomic_path(path, suffix=".partial.keras") as tmp:
        model.save(str(tmp))


def write_history(rows: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in HISTORY_FIELDS})


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (float(v) if k != "epoch" else int(v)) if v not in ("", None) else float("nan")
                 for k, v in r.items()} for r in csv.DictReader(f)]


def plot_curves(rows: list[dict], path: Path) -> None:
    """Loss and ROC-AUC per epoch (train and validation) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    ep = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "roc_auc", "ROC-AUC")):
        ax.plot(ep, [r[key] for r in rows], label="train")
        ax.plot(ep, [r[f"val_{key}"] for r in rows], label="validation")
        if key == "roc_auc" and any(r.get("val_roc_auc_moving_stats") is not None for r in rows):
            ax.plot(ep, [r.get("val_roc_auc_moving_stats", float("nan")) for r in rows], ":",
                    label="validation, moving BatchNorm statistics")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".partial.png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def recalibrate_batchnorm(model, batches) -> int:
    """Re-estimate every BatchNorm's moving mean/variance as the plain average over ``batches``.

    Short runs leave the moving statistics behind the weights, and training batches are augmented
    (SpecAugment masks, mixup) while validation and deployment inputs are not; this pass makes the
    statistics those of clean inputs under the current weights. Each batch runs through one compiled
    training-mode forward pass with momentum 0 (the moving statistics become that batch's), and the
    per-batch statistics are averaged. Returns the number of batches used.
    """
    import keras

    bns = [la for la in model._flatten_layers(include_self=False, recursive=True)
           if isinstance(la, keras.layers.BatchNormalization) and la.trainable]
    if not bns:
        return 0
    saved = [bn.momentum for bn in bns]
    n, sums = 0, [[0.0, 0.0] for _ in bns]
    try:
        for bn in bns:
            bn.momentum = 0.0
        fn = _compiled(model, training=True)  # traced with momentum 0, kept for the next re-estimation
        for xb in batches:
            fn(xb)
            n += 1
            for acc, bn in zip(sums, bns, strict=True):
                acc[0] = acc[0] + bn.moving_mean.numpy().astype(np.float64)
                acc[1] = acc[1] + bn.moving_variance.numpy().astype(np.float64)
        for acc, bn in zip(sums, bns, strict=True):
            if n:
                bn.moving_mean.assign((acc[0] / n).astype(bn.moving_mean.dtype))
                bn.moving_variance.assign((acc[1] / n).astype(bn.moving_variance.dtype))
    finally:
        for bn, m in zip(bns, saved, strict=True):
            bn.momentum = m
    return n


def recalibrate_batchnorm_measured(model, batches, evaluate) -> dict:
    """``recalibrate_batchnorm`` with the validation loss and ROC-AUC (``evaluate() -> (loss, roc_auc)``)
    measured before (the moving statistics training left) and after (the statistics the model is saved
    with). Training runs it before every validation pass, so that the figures it reports, stops on and
    chooses the best epoch by are those of the model it saves; the best epoch's note is kept
    (``TrainResult.batchnorm``, ``X_train_state.json``).
    """
    loss_before, auc_before = evaluate()
    n = recalibrate_batchnorm(model, batches)
    loss_after, auc_after = evaluate()
    note = {"batches": n, "val_loss_before": loss_before, "val_loss_after": loss_after,
            "val_roc_auc_before": auc_before, "val_roc_auc_after": auc_after}
    log.debug("BatchNorm statistics re-estimated on %d batches: val loss %.4f -> %.4f, ROC-AUC %.3f -> %.3f",
             n, loss_before, loss_after, auc_before, auc_after)
    return note


def bn_reference_batches(train_ds, cfg, cfg_json: str, executor=None, cache=None) -> list[np.ndarray]:
    """The fixed, un-augmented training chunks BatchNorm statistics are re-estimated on before every
    validation pass: ``cfg.bn_recalibration_batches`` batches of ``cfg.batch_size`` (fewer when the folder
    is small), from the deterministic salient chunks of a seeded choice of training files."""
    from edgeport.training import data as D

    if cfg.bn_recalibration_batches <= 0:
        return []
    rng = np.random.default_rng(cfg.seed + 104_729)
    files = sorted(set(train_ds.files))
    want = cfg.bn_recalibration_batches * cfg.batch_size
    n_files = min(len(files), math.ceil(want / cfg.max_chunks_per_file))
    picked = sorted(rng.choice(len(files), size=n_files, replace=False).tolist())
    labels = np.zeros((n_files, train_ds.labels.shape[1]), np.float32)  # unused: statistics need inputs only
    x, _, _ = D.load_fixed([files[i] for i in picked], labels, cfg_json, executor=executor,
                           chunks_per_file=cfg.max_chunks_per_file, max_duration=cfg.max_duration,
                           desc="BatchNorm reference chunks", cache=cache)
    x = x[rng.permutation(len(x))][:want]
    n_full = len(x) // cfg.batch_size
    if n_full == 0:
        return [x] if len(x) > 1 else []
    return [x[i * cfg.batch_size:(i + 1) * cfg.batch_size] for i in range(n_full)]


def make_train_step(logit_model, loss_fn, optimizer, train_vars, *, qat_kernels=None, mixed_precision=False):
    """Compiled step (x, y, w) -> (loss, probabilities); with ``qat_kernels`` the forward pass uses INT8-grid
    kernels (see edgeport.training.qat)."""
    import contextlib

    import tensorflow as tf

    from edgeport.training.qat import quantized_kernels

    @tf.function(reduce_retracing=True)
    def step(x, y, w):
        ctx = quantized_kernels(qat_kernels) if qat_kernels else contextlib.nullcontext()
        with tf.GradientTape() as tape:
            with ctx:
                logits = logit_model(x, training=True)
                loss = loss_fn(y, logits, w)
            scaled = optimizer.scale_loss(loss) if mixed_precision else loss
        grads = tape.gradient(scaled, train_vars)
        optimizer.apply(grads, train_vars)
        return loss, tf.sigmoid(tf.cast(logits, tf.float32))

    return step


_COMPILED_FNS: dict[tuple[int, bool], tuple] = {}


def _compiled(model, *, training: bool):
    """``x -> model(x, training=training)`` as one compiled function per model (numpy in, numpy out)."""
    import tensorflow as tf

    key = (id(model), training)
    fn = _COMPILED_FNS.get(key)
    if fn is None or fn[0] is not model:
        fn = _COMPILED_FNS[key] = (model, tf.function(lambda t: model(t, training=training), reduce_retracing=True))
    return lambda x: np.asarray(fn[1](tf.constant(x)))


def predict_logits(logit_model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Inference-mode logits in batches (one compiled function per model)."""
    fn = _compiled(logit_model, training=False)
    outs = [fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0,), np.float32)


def _evaluate(logit_model, x, y, loss_fn) -> tuple[float, float, np.ndarray]:
    if len(x) == 0:
        return float("nan"), float("nan"), np.zeros((0,))
    logits = predict_logits(logit_model, x)
    loss = float(loss_fn(y, logits))
    p = 1.0 / (1.0 + np.exp(-logits))
    return loss, roc_auc_macro(y, p), p


def train(cfg: TrainConfig, *, on_epoch=None) -> TrainResult:
    """Train (or QAT-fine-tune, or linear-probe) an audio classifier as ``cfg`` says. See module docstring.

    ``on_epoch(row)``, if given, is called with each epoch's history row once it is saved (the tuner reports
    ``row["val_roc_auc"]`` to its pruner); an exception it raises stops training and propagates."""
    t_start = time.time()
    mode = "qat" if cfg.qat else "probe" if cfg.linear_probe else "train"
    out = output_paths(cfg.checkpoint, {"train": "", "qat": "_qat", "probe": "_probe"}[mode])
    plan = OutputPlan(force=cfg.force or cfg.resume, what="a trained model's files",
                      hint="pass --force to replace them, --resume to continue that training, or choose "
                           "another --checkpoint-path")
    for p in out.values():
        plan.add(p)

    from edgeport.audio.dataset import scan_dataset

    if mode != "train" and not cfg.checkpoint.is_file():
        what = "QAT fine-tunes a trained model" if mode == "qat" else "Linear probing needs a pretrained model"
        raise ConfigError(f"{what}, and {cfg.checkpoint} does not exist: train without --"
                          f"{'qat' if mode == 'qat' else 'linear-probe'} first (QAT from random weights "
                          "does not converge)")
    plan.check()  # existing outputs without --force / --resume, unwritable folder: before any work
    # data first: bad folders fail before TensorFlow is imported
    ds = scan_dataset(cfg.data_path_train, max_samples=cfg.max_samples, seed=cfg.seed)
    set_seeds(cfg.seed)
    import keras

    base_model, mcfg = _model_config(cfg, mode, ds)
    loop = _Loop(cfg=cfg, mode=mode, out=out, plan=plan, ds=ds, mcfg=mcfg, t_start=t_start)
    prev_policy = keras.config.dtype_policy()
    if cfg.mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        return _run(loop, base_model, on_epoch)
    finally:
        plan.abort()
        if cfg.mixed_precision:
            keras.config.set_dtype_policy(prev_policy)
        if loop.executor is not None:
            loop.executor.shutdown(wait=True, cancel_futures=True)


def _model_config(cfg: TrainConfig, mode: str, ds):
    """(the checkpoint's model or None, the AudioModelConfig this run trains) for ``mode`` and the folder."""
    from edgeport.families.audio.frontends import npu_problems
    from edgeport.families.audio.loading import load_trained_model

    base_model = None
    if mode == "train":
        mcfg = cfg.audio.replace(num_classes=len(ds.class_names), class_names=tuple(ds.class_names))
    else:
        base_model, base_mcfg = load_trained_model(cfg.checkpoint)
        if mode == "qat" and list(base_mcfg.class_names) != ds.class_names:
            raise DataError(f"QAT needs the classes the model was trained on ({len(base_mcfg.class_names)}: "
                            f"{list(base_mcfg.class_names)[:5]}...), the folder has {ds.class_names[:5]}...: "
                            "use --linear-probe to adapt to a new class set first")
        mcfg = base_mcfg if mode == "qat" else base_mcfg.replace(num_classes=len(ds.class_names),
                                                                 class_names=tuple(ds.class_names))
    for p in npu_problems(mcfg):
        log.warning("NPU readiness: %s", p)
    return base_model, mcfg


@dataclass
class _Best:
    """The best epoch so far and the early-stopping count (kept in ``X_train_state.json``)."""

    loss: float = float("inf")
    roc_auc: float = float("nan")
    epoch: int = 0
    wait: int = 0
    batchnorm: dict | None = None

    @classmethod
    def from_state(cls, state: dict, start_epoch: int) -> _Best:
        return cls(loss=float(state.get("best_val_loss") if state.get("best_val_loss") is not None else "inf"),
                   roc_auc=float(state["best_val_roc_auc"]) if state.get("best_val_roc_auc") is not None
                   else float("nan"),
                   epoch=int(state.get("best_epoch", start_epoch)), wait=int(state.get("wait", 0)),
                   batchnorm=state.get("batchnorm_recalibration"))


@dataclass
class _Loop:
    """One run's parts, shared by the functions that do its jobs (model, optimiser, data, epochs, files)."""

    cfg: TrainConfig
    mode: str
    out: dict[str, Path]
    plan: OutputPlan
    ds: object
    mcfg: object
    t_start: float
    executor: object = None
    state: dict | None = None             # the X_train_state.json resumed from
    stage: dict[str, Path] = field(default_factory=dict)
    model: object = None
    logit_model: object = None
    step_fn: object = None
    eval_loss: object = None
    schedule: object = None
    iterations: object = None
    steps: int = 0
    start_epoch: int = 0
    best: _Best = field(default_factory=_Best)
    placed_best: _Best = field(default_factory=_Best)  # the best of the set in place
    placed_sets: int = 0
    model_placed: bool = False
    history: list[dict] = field(default_factory=list)
    train_ds: object = None
    val_ds: object = None
    class_weights: np.ndarray | None = None
    val: tuple = ()                        # (inputs, labels, unreadable files)
    stream: object = None
    aug_rng: object = None
    bn_batches: list = field(default_factory=list)


def _run(loop: _Loop, base_model, on_epoch=None) -> TrainResult:
    _split_data(loop)
    loop.state = _resume_state(loop.cfg, loop.out)
    if loop.state is not None:
        _check_resumable(loop.out, loop.mcfg)
    _build_model(loop, base_model)
    _build_optimizer(loop)
    # every write goes to the staged set (``stage``), moved into place as a whole after each epoch
    from edgeport.families.audio.model_config import write_model_config

    loop.stage = {k: loop.plan.staged(v) for k, v in loop.out.items()}
    write_model_config(loop.mcfg, loop.stage["config"])
    atomic_write_text(loop.stage["labels"], "\n".join(loop.ds.class_names) + "\n")
    loop.placed_best, loop.model_placed = replace(loop.best), loop.state is not None
    _load_data(loop)
    epoch, stopped_early = _epochs(loop, on_epoch)
    return _finish(loop, epoch, stopped_early)


def _split_data(loop: _Loop) -> None:
    from edgeport.training import data as D

    cfg, ds = loop.cfg, loop.ds
    tr_idx, va_idx = D.split_dataset(ds, cfg.val_split, cfg.seed)
    train_ds = ds.subset(tr_idx)
    loop.train_ds = train_ds.subset(D.upsample_indices(train_ds.folder_of, cfg.upsample_ratio, cfg.seed))
    loop.val_ds = ds.subset(va_idx)
    loop.class_weights = D.class_weights(loop.train_ds.labels) if cfg.class_weights else None
    loop.steps = cfg.steps_per_epoch or max(1, math.ceil(len(loop.train_ds) / cfg.batch_size))
    log.info("%d classes, %d training files (%d after upsampling), %d validation files, %d steps/epoch",
             len(ds.class_names), len(tr_idx), len(loop.train_ds), len(loop.val_ds), loop.steps)


def _resume_state(cfg: TrainConfig, out: dict[str, Path]) -> dict | None:
    """With ``--resume``: the saved train state, if the model and its state file are there (else None)."""
    if not cfg.resume:
        return None
    if out["state"].is_file() and out["model"].is_file():
        return json.loads(out["state"].read_text())
    log.warning("--resume: no %s with its state file yet; starting from scratch", out["model"].name)
    return None


def _build_model(loop: _Loop, base_model) -> None:
    """The model to train: the resumed one, a new one, the checkpoint (QAT) or a probe on it."""
    import keras

    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.loading import load_keras_model
    from edgeport.families.audio.model_config import LOGITS_LAYER
    from edgeport.training.probe import build_probe_model
    from edgeport.training.qat import freeze_batchnorm

    if loop.state is not None:
        model = load_keras_model(loop.out["model"])
    elif loop.mode == "train":
        model = build_model(loop.mcfg)
    elif loop.mode == "qat":
        model = base_model
    else:
        model = build_probe_model(base_model, len(loop.ds.class_names), dropout=loop.mcfg.dropout)
    if loop.mode == "qat":
        freeze_batchnorm(model)
    loop.model = model
    loop.logit_model = keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output)


def _build_optimizer(loop: _Loop) -> None:
    """Optimiser, schedule, losses and the compiled step; a resumed run continues its step and its best."""
    from edgeport.training.losses import cosine_schedule, make_loss, make_optimizer
    from edgeport.training.qat import quantizable_kernels

    cfg, model = loop.cfg, loop.model
    train_vars = model.trainable_variables
    qat_kernels = [(v, k) for v, k in quantizable_kernels(model) if v.trainable] if loop.mode == "qat" else None
    total_steps = cfg.epochs * loop.steps
    loop.schedule = cosine_schedule(cfg.learning_rate, total_steps)
    opt = make_optimizer(cfg.optimizer, loop.schedule, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                         mixed_precision=cfg.mixed_precision)
    opt.build(train_vars)
    # the step counter the schedule reads (a LossScaleOptimizer's own counter does not advance)
    loop.iterations = getattr(opt, "inner_optimizer", opt).iterations
    state = loop.state
    if state is not None:
        loop.start_epoch = int(state["epoch"])
        loop.iterations.assign(int(state["step"]))
        loop.best = _Best.from_state(state, loop.start_epoch)
        loop.history = [r for r in read_history(loop.out["history"]) if r["epoch"] <= loop.start_epoch]
        if loop.start_epoch >= cfg.epochs:
            log.info("%s is already trained to epoch %d (--epochs %d): raise --epochs to continue",
                     loop.out["model"].name, loop.start_epoch, cfg.epochs)
        log.info("Resuming at epoch %d, step %d, learning rate %.3g (cosine over %d steps)", loop.start_epoch,
                 int(state["step"]), float(loop.schedule(int(state["step"]))), total_steps)
    loss_name = "focal" if cfg.loss == "focal" else "bce"
    loss_fn = make_loss(loss_name, label_smoothing=cfg.label_smoothing, focal_gamma=cfg.focal_gamma)
    loop.eval_loss = make_loss(loss_name, label_smoothing=0.0, focal_gamma=cfg.focal_gamma)
    loop.step_fn = make_train_step(loop.logit_model, loss_fn, opt, train_vars, qat_kernels=qat_kernels,
                                   mixed_precision=cfg.mixed_precision)


def _load_data(loop: _Loop) -> None:
    """Validation chunks, the training stream, augmentation and BatchNorm reference batches."""
    from edgeport.training import data as D

    cfg = loop.cfg
    cfg_json = json.dumps(loop.mcfg.to_dict())
    loop.executor = executor = D.make_executor(cfg.num_workers)
    cache = D.cache_spec(cfg.cache_dir, cfg.cache_memory_mb, cfg.num_workers)
    loop.val = D.load_fixed(loop.val_ds.files, loop.val_ds.labels, cfg_json, executor=executor,
                            chunks_per_file=cfg.max_chunks_per_file, max_duration=cfg.max_duration, cache=cache)
    loop.stream = D.ChunkStream(loop.train_ds.files, loop.train_ds.labels, cfg_json, executor=executor,
                                seed=cfg.seed + loop.start_epoch, max_chunks_per_file=cfg.max_chunks_per_file,
                                max_duration=cfg.max_duration, reservoir_size=cfg.reservoir_size, cache=cache)
    loop.aug_rng = np.random.default_rng(cfg.seed + 7919 * (loop.start_epoch + 1))
    # validation measures the model as it would be saved: BatchNorm statistics re-estimated on fixed clean
    # training chunks first (QAT freezes BatchNorm, probing trains only the head: their statistics stay)
    loop.bn_batches = (bn_reference_batches(loop.train_ds, cfg, cfg_json, executor, cache)
                       if loop.mode == "train" else [])


def _validate(loop: _Loop) -> tuple[float, float, float, dict | None]:
    """(val loss, val ROC-AUC, val ROC-AUC with the moving statistics, re-estimation note or None)."""
    def evaluate():
        return _evaluate(loop.logit_model, loop.val[0], loop.val[1], loop.eval_loss)[:2]
    if not loop.bn_batches:
        loss_, auc_ = evaluate()
        return loss_, auc_, auc_, None
    note = recalibrate_batchnorm_measured(loop.model, loop.bn_batches, evaluate)
    return note["val_loss_after"], note["val_roc_auc_after"], note["val_roc_auc_before"], note


def _write_state(loop: _Loop, epoch: int, *, completed: bool = False, interrupted: bool = False) -> None:
    cfg, best, step = loop.cfg, loop.best, int(loop.iterations.numpy())
    s = {"epoch": epoch, "step": step, "epochs_total": cfg.epochs,
         "steps_per_epoch": loop.steps, "learning_rate": float(loop.schedule(step)),
         "best_val_loss": best.loss, "best_val_roc_auc": best.roc_auc, "best_epoch": best.epoch, "wait": best.wait,
         "mode": loop.mode, "completed": completed, "interrupted": interrupted, "seed": cfg.seed,
         "model": loop.out["model"].name}
    if best.batchnorm is not None:
        s["batchnorm_recalibration"] = best.batchnorm
    atomic_write_json(loop.stage["state"], s)  # strict JSON: an infinite best loss is null


def _prune_on_commit(loop: _Loop) -> bool:
    """The first set a fresh run places removes stale earlier files; a resumed run's set in place is its own
    (its best model stays until an epoch beats it), so nothing is pruned."""
    return loop.placed_sets == 0 and loop.state is None


def _place_set(loop: _Loop) -> None:
    """This run's whole set into place; the first time in a fresh run, stale earlier files go (``_prune_on_commit``)."""
    if not loop.model_placed and not loop.stage["model"].exists():
        save_model_atomic(loop.model, loop.stage["model"])
    loop.plan.commit(prune=_prune_on_commit(loop))
    loop.model_placed, loop.placed_best, loop.placed_sets = True, replace(loop.best), loop.placed_sets + 1


def _train_epoch(loop: _Loop, epoch: int) -> dict:
    """One epoch of steps and its validation: the history row."""
    import tensorflow as tf
    from tqdm.auto import tqdm

    from edgeport.audio.augment import mixup, spec_augment
    from edgeport.training import data as D

    cfg, steps, rng = loop.cfg, loop.steps, loop.aug_rng
    is_spec = len(loop.mcfg.input_shape) == 3
    t0 = time.time()
    lr_now = float(loop.schedule(int(loop.iterations.numpy())))
    bar = tqdm(D.prefetched(loop.stream.batches(cfg.batch_size, steps)), total=steps,
               desc=f"epoch {epoch}/{cfg.epochs}", disable=not cfg.progress, leave=False)
    losses, ys, ps = [], [], []
    for i, (xb, yb) in enumerate(bar):
        xb, yb = mixup(xb, yb, rng, alpha=cfg.mixup_alpha, probability=cfg.mixup_probability)
        if cfg.spec_augment and is_spec:
            xb = spec_augment(xb, rng, freq_mask_max=cfg.freq_mask_max, time_mask_max=cfg.time_mask_max)
        wb = D.sample_weights(yb, loop.class_weights)
        loss, p = loop.step_fn(tf.constant(xb), tf.constant(yb), tf.constant(wb))
        losses.append(float(loss))
        ys.append(yb)
        ps.append(np.asarray(p))
        if i % 5 == 4 or i == steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses):.4f}",
                            roc_auc=f"{roc_auc_macro(np.concatenate(ys), np.concatenate(ps)):.3f}")
    tr_auc = roc_auc_macro(np.concatenate(ys), np.concatenate(ps))
    val_loss, val_auc, moving_auc, bn_note = _validate(loop)
    row = {"epoch": epoch, "loss": float(np.mean(losses)), "roc_auc": tr_auc, "val_loss": val_loss,
           "val_roc_auc": val_auc, "val_roc_auc_moving_stats": moving_auc, "learning_rate": lr_now,
           "seconds": time.time() - t0}
    log.info("epoch %d/%d  loss %.4f  roc_auc %.3f  val_loss %.4f  val_roc_auc %.3f (moving BatchNorm "
             "statistics: %.3f)  lr %.2e  %.1fs", epoch, cfg.epochs, row["loss"], tr_auc, val_loss, val_auc,
             moving_auc, lr_now, row["seconds"])
    monitor = val_loss if not math.isnan(val_loss) else row["loss"]
    best = loop.best
    if monitor < best.loss:
        loop.best = _Best(monitor, val_auc, epoch, 0, None if bn_note is None else {"epoch": epoch, **bn_note})
        save_model_atomic(loop.model, loop.stage["model"])
    else:
        best.wait += 1
    return row


def _epochs(loop: _Loop, on_epoch) -> tuple[int, bool]:
    """The epochs from where the run starts; each ends with its whole set in place. (last epoch, stopped early)"""
    epoch = loop.start_epoch
    try:
        for epoch in range(loop.start_epoch + 1, loop.cfg.epochs + 1):
            row = _train_epoch(loop, epoch)
            loop.history.append(row)
            write_history(loop.history, loop.stage["history"])
            _write_state(loop, epoch)
            _place_set(loop)
            if on_epoch is not None:
                on_epoch(row)
            if loop.best.wait >= loop.cfg.patience:
                log.info("Early stopping: no improvement for %d epochs (best epoch %d)", loop.best.wait,
                         loop.best.epoch)
                return epoch, True
    except KeyboardInterrupt:
        _interrupted(loop, epoch)
        raise
    return epoch, False


def _interrupted(loop: _Loop, epoch: int) -> None:
    """Ctrl-C: the set of the last completed epoch stays in place, marked interrupted (resumable)."""
    out = loop.out
    if loop.placed_sets == 0 and loop.state is None:
        log.warning("Interrupted in epoch %d, before any epoch of this run ended: nothing written%s", epoch,
                    f"; {out['model'].name} and its files are as they were" if out["model"].exists() else "")
        return
    remove_path(loop.stage["model"])  # the set in place is the one of the last completed epoch
    loop.best = replace(loop.placed_best)
    done = epoch - 1 if epoch > loop.start_epoch else loop.start_epoch
    write_history([r for r in loop.history if r["epoch"] <= done], loop.stage["history"])
    _write_state(loop, done, interrupted=True)
    loop.plan.commit()
    log.warning("Interrupted: %s (epoch %d) and %s are usable; continue with --resume", out["model"], done,
                out["state"])


def _finish(loop: _Loop, epoch: int, stopped_early: bool) -> TrainResult:
    """The best epoch's model (its weights and the BatchNorm statistics its validation figures were measured
    with), measured once more, and the final set in place."""
    from edgeport.families.audio.loading import load_keras_model

    out, stage, best = loop.out, loop.stage, loop.best
    if out["model"].is_file() and best.epoch != epoch:
        loop.model.set_weights(load_keras_model(out["model"]).get_weights())
    val_loss, val_auc, _ = _evaluate(loop.logit_model, loop.val[0], loop.val[1], loop.eval_loss)
    save_model_atomic(loop.model, stage["model"])
    write_history(loop.history, stage["history"])
    plot_curves(loop.history, stage["curves"])
    _write_state(loop, epoch, completed=True)
    loop.plan.commit(prune=_prune_on_commit(loop))
    skipped = list(loop.ds.skipped) + loop.val[2] + [(f, e) for f, e in loop.stream.failed.items()]
    log.info("Saved %s: best epoch %d of %d (val_loss %.4f, val ROC-AUC %.3f) in %.0f s", out["model"],
             best.epoch, epoch, val_loss, val_auc, time.time() - loop.t_start)
    return TrainResult(paths=out, class_names=list(loop.ds.class_names), history=loop.history, epochs_run=epoch,
                       best_epoch=best.epoch, val_loss=val_loss, val_roc_auc=val_auc,
                       seconds=time.time() - loop.t_start, skipped_files=skipped, stopped_early=stopped_early,
                       batchnorm=best.batchnorm)

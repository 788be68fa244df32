"""Multi-label losses on logits (label smoothing, BCE or focal), optimizers with global-norm clipping."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def smooth_labels(y, smoothing: float):
    """Binary label smoothing: y (1 - s) + s / 2."""
    return y * (1.0 - smoothing) + 0.5 * smoothing


def make_loss(kind: str = "auto", *, label_smoothing: float = 0.0, focal_gamma: float = 2.0):
    """``loss(y, logits, sample_weight=None)`` -> scalar: weighted mean of the per-sample class-mean loss."""
    import tensorflow as tf

    focal = kind == "focal"

    def loss(y, logits, sample_weight=None):
        y = tf.cast(y, tf.float32)
        logits = tf.cast(logits, tf.float32)
        ys = smooth_labels(y, label_smoothing)
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=ys, logits=logits)
        if focal:
            p = tf.sigmoid(logits)
            p_t = ys * p + (1.0 - ys) * (1.0 - p)
            ce = ce * tf.pow(1.0 - p_t, focal_gamma)
        per_sample = tf.reduce_mean(ce, axis=-1)
        if sample_weight is not None:
            per_sample = per_sample * tf.cast(sample_weight, tf.float32)
        return tf.reduce_mean(per_sample)

    return loss


def cosine_schedule(learning_rate: float, total_steps: int):
    """Cosine decay from ``learning_rate`` to ~0 (1e-3 of it) over ``total_steps`` optimizer steps."""
    import keras

    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, int(total_steps)), alpha=1e-3)


def make_optimizer(name: str, schedule, *, weight_decay: float = 0.0, grad_clip: float = 0.0,
                   mixed_precision: bool = False):
    """adam / sgd (momentum 0.9) / adamw; ``grad_clip`` > 0 clips by the global norm over all gradients."""
    import keras

    clip = {"global_clipnorm": float(grad_clip)} if grad_clip > 0 else {}
    if weight_decay and name != "adamw":
        log.warning("--weight-decay is only used by adamw; ignored with --optimizer %s", name)
    if name == "adam":
        opt = keras.optimizers.Adam(schedule, **clip)
    elif name == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=0.9, **clip)
    else:
        opt = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, **clip)
    if mixed_precision:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt

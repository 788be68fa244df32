"""Losses and optimizers: global-norm clipping on a known gradient, label smoothing, focal loss."""

from __future__ import annotations

import numpy as np
import pytest


def _apply(grad_clip, grads):
    import keras

    from edgeport.training.losses import make_optimizer

    vs = [keras.Variable(np.zeros(len(g), np.float32)) for g in grads]
    opt = make_optimizer("sgd", 1.0, grad_clip=grad_clip)
    opt.momentum = 0.0
    opt.build(vs)
    opt.apply([np.asarray(g, np.float32) for g in grads], vs)
    return [-np.asarray(v.numpy()) for v in vs]  # step = -lr * clipped grad


def test_grad_clip_acts_on_global_norm():
    # grads (3,) and (4,): global norm 5 -> scaled by 1/5 to norm 1; per-variable clipping would give (1, 1)
    steps = _apply(1.0, [[3.0], [4.0]])
    np.testing.assert_allclose(np.concatenate(steps), [0.6, 0.8], rtol=1e-6)
    steps = _apply(0.0, [[3.0], [4.0]])  # 0 disables
    np.testing.assert_allclose(np.concatenate(steps), [3.0, 4.0], rtol=1e-6)


def test_label_smoothing_and_focal():
    from edgeport.training.losses import make_loss

    y = np.array([[1.0, 0.0]], np.float32)
    logits = np.array([[2.0, -1.0]], np.float32)
    p = 1 / (1 + np.exp(-logits))

    def bce(t):
        return float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))

    assert float(make_loss("bce")(y, logits)) == pytest.approx(bce(y), rel=1e-5)
    ys = y * 0.9 + 0.05
    assert float(make_loss("bce", label_smoothing=0.1)(y, logits)) == pytest.approx(bce(ys), rel=1e-5)
    pt = y * p + (1 - y) * (1 - p)
    focal = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)) * (1 - pt) ** 2)
    assert float(make_loss("focal", focal_gamma=2.0)(y, logits)) == pytest.approx(focal, rel=1e-5)
    w = np.array([3.0], np.float32)
    assert float(make_loss("bce")(y, logits, w)) == pytest.approx(3 * bce(y), rel=1e-5)


def test_weight_decay_only_adamw(caplog):
    import keras

    from edgeport.training.losses import make_optimizer

    assert isinstance(make_optimizer("adamw", 1e-3, weight_decay=0.01), keras.optimizers.AdamW)
    make_optimizer("adam", 1e-3, weight_decay=0.01)
    assert "only used by adamw" in caplog.text

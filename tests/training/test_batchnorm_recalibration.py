"""After training, BatchNorm statistics are re-estimated and the validation loss before and after is on
record."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")


def _model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    h = keras.layers.BatchNormalization(name="bn")(inp)
    out = keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)(h)
    return keras.Model(inp, out)


def _loss_on(model, x, y):
    def evaluate():
        p = 1.0 / (1.0 + np.exp(-model.predict(x, verbose=0)[:, 0]))
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), float("nan")
    return evaluate


def test_stale_statistics_are_replaced_and_the_gain_recorded():
    from edgeport.training.trainer import recalibrate_batchnorm_measured

    model = _model()
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 1.0, (64, 4)).astype(np.float32)  # data far from the initial moving mean 0 / var 1
    y = (x.sum(1) > 20.0).astype(np.float32)
    note = recalibrate_batchnorm_measured(model, [x[:32], x[32:]], _loss_on(model, x, y))
    assert note["batches"] == 2
    assert note["val_loss_after"] < note["val_loss_before"] - 1.0  # stale statistics: every logit ~ +20
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(0), atol=0.05)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(0), rtol=0.15)

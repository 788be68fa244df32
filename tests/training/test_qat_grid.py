"""QAT's forward pass sees kernels on the symmetric per-channel INT8 grid; float shadows survive."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.xdist_group("audio")


def _tiny_model():
    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig(sample_rate=16000, chunk_duration=0.5, spec_width=16, fft_length=128, num_mels=16,
                           alpha=0.25, embeddings_size=16, num_classes=3, class_names=("a", "b", "c"), dropout=0.0,
                           audio_frontend="librosa", mag_scale="none")
    return build_model(cfg), cfg


def test_int8_grid_matches_converter_rule():
    from edgeport.training.qat import int8_grid

    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
    q = int8_grid(w)
    scale = np.abs(w).max(axis=(0, 1, 2)) / 127
    k = q / scale
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)
    assert np.abs(np.round(k)).max() == 127
    np.testing.assert_allclose(q, w, atol=scale.max() / 2 + 1e-7)
    dw = rng.normal(size=(3, 3, 4, 1)).astype(np.float32)
    qd = int8_grid(dw, "depthwise")
    sd = np.abs(dw).max(axis=(0, 1, 3)) / 127  # one scale per input channel (TFLite depthwise channels)
    kd = qd / sd[None, None, :, None]
    np.testing.assert_allclose(kd, np.round(kd), atol=1e-3)


def test_qat_step_uses_grid_weights_and_restores_float():
    import keras
    import tensorflow as tf

    from edgeport.families.audio.model_config import LOGITS_LAYER
    from edgeport.training.losses import make_loss, make_optimizer
    from edgeport.training.qat import freeze_batchnorm, int8_grid, quantizable_kernels
    from edgeport.training.trainer import make_train_step, recalibrate_batchnorm

    keras.utils.set_random_seed(0)
    model, cfg = _tiny_model()
    x = np.random.default_rng(1).random((4, *cfg.input_shape)).astype(np.float32)
    recalibrate_batchnorm(model, [x])  # untrained statistics make every activation vanish
    freeze_batchnorm(model)
    logit_model = keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output)
    kernels = quantizable_kernels(model)
    assert len(kernels) > 20
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    w = np.ones(4, np.float32)
    loss_fn = make_loss("bce")
    float_w = [v.numpy().copy() for v, _ in kernels]
    opt = make_optimizer("sgd", 0.0)  # lr 0: the step must leave weights exactly as they were
    step = make_train_step(logit_model, loss_fn, opt, model.trainable_variables, qat_kernels=kernels)
    qat_loss, _ = step(tf.constant(x), tf.constant(y), tf.constant(w))
    for (v, _), f in zip(kernels, float_w, strict=True):
        np.testing.assert_array_equal(v.numpy(), f)  # float shadows restored
    float_loss = float(loss_fn(y, logit_model(x, training=True), w))
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for (v, kind), (cv, _) in zip(kernels, quantizable_kernels(clone), strict=True):
        cv.assign(int8_grid(v.numpy(), kind))
    clone_logits = keras.Model(clone.inputs, clone.get_layer(LOGITS_LAYER).output)
    grid_loss = float(loss_fn(y, clone_logits(x, training=True), w))
    # the step's loss is the grid model's (up to graph-vs-eager float32 noise), far from the float model's
    assert abs(float(qat_loss) - grid_loss) < 1e-3 * abs(float(qat_loss) - float_loss)

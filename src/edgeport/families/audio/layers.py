"""In-graph frontend layers (Keras 3), registered so ``.keras`` files load with ``safe_mode=True``.

Layout inside the model: (batch, bins, frames, 1), the frequency axis first.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from edgeport.audio import spectrogram as sp

PACKAGE = "edgeport"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MelMixer(keras.layers.Layer):
    """Fixed (optionally trainable) 1x1 Slaney mel mixer: (B, bins, T, 1) -> (B, mels, T, 1), then ReLU.

    Runs as a 1x1 convolution over the bins-as-channels layout, which NPUs execute natively.
    """

    def __init__(self, num_mels: int, sample_rate: int, fft_length: int, **kwargs):
        super().__init__(**kwargs)
        self.num_mels, self.sample_rate, self.fft_length = int(num_mels), int(sample_rate), int(fft_length)

    def build(self, input_shape):
        bins = int(input_shape[1])
        fb = sp.mel_filterbank(self.sample_rate, self.fft_length, self.num_mels).T  # (257, mels)
        w = np.zeros((1, 1, bins, self.num_mels), np.float32)
        w[0, 0, : fb.shape[0]] = fb
        self.kernel = self.add_weight(name="kernel", shape=w.shape,
                                      initializer=keras.initializers.Zeros(), trainable=self.trainable)
        self.kernel.assign(w)

    def call(self, x):
        x = ops.transpose(x, (0, 3, 2, 1))  # (B, 1, T, bins)
        y = ops.relu(ops.conv(x, ops.cast(self.kernel, x.dtype), strides=1, padding="valid"))
        return ops.transpose(y, (0, 3, 2, 1))  # (B, mels, T, 1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_mels, input_shape[2], 1)

    def get_config(self):
        return {**super().get_config(), "num_mels": self.num_mels, "sample_rate": self.sample_rate,
                "fft_length": self.fft_length}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaxNormalize(keras.layers.Layer):
    """Per-sample max normalisation x / (max(x) + eps). Divides by an input-derived value: on quiet INT8
    input the max rounds to zero, so conversion decides whether this runs in the graph or on the host."""

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        m = ops.max(x, axis=(1, 2, 3), keepdims=True)
        return x / (m + ops.cast(self.epsilon, x.dtype))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MagPWL(keras.layers.Layer):
    """Per-channel learnable piecewise-linear compression: sum_k a_k relu(x - t_k) over the knots."""

    def build(self, input_shape):
        ch = int(input_shape[1])
        init = np.tile(np.asarray(sp.PWL_SLOPES, np.float32)[:, None], (1, ch))
        self.slopes = self.add_weight(name="slopes", shape=(len(sp.PWL_KNOTS), ch),
                                      initializer=keras.initializers.Zeros())
        self.slopes.assign(init)

    def call(self, x):
        a = ops.cast(self.slopes, x.dtype)
        y = 0.0
        for k, knot in enumerate(sp.PWL_KNOTS):
            y = y + ops.reshape(a[k], (1, -1, 1, 1)) * ops.relu(x - knot)
        return y


@keras.saving.register_keras_serializable(package=PACKAGE)
class MagPCEN(keras.layers.Layer):
    """Per-channel energy normalisation with learnable alpha, delta, root (moving-average smoother)."""

    def build(self, input_shape):
        ch = int(input_shape[1])
        self.log_alpha = self.add_weight(name="log_alpha", shape=(ch,),
                                         initializer=keras.initializers.Constant(np.log(sp.PCEN_ALPHA)))
        self.log_delta = self.add_weight(name="log_delta", shape=(ch,),
                                         initializer=keras.initializers.Constant(np.log(sp.PCEN_DELTA)))
        self.log_root = self.add_weight(name="log_root", shape=(ch,),
                                        initializer=keras.initializers.Constant(np.log(sp.PCEN_ROOT)))

    def call(self, x):
        shape = (1, -1, 1, 1)
        alpha = ops.reshape(ops.exp(ops.cast(self.log_alpha, x.dtype)), shape)
        delta = ops.reshape(ops.exp(ops.cast(self.log_delta, x.dtype)), shape)
        root = ops.reshape(ops.exp(ops.cast(self.log_root, x.dtype)), shape)
        m = ops.average_pool(x, pool_size=(1, sp.PCEN_WINDOW), strides=(1, 1), padding="same")
        smooth = ops.exp(-alpha * ops.log(m + sp.PCEN_EPS))
        return ops.power(x * smooth + delta, root) - ops.power(delta, root)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MagDB(keras.layers.Layer):
    """Decibels mapped from [-80, 0] dB to [0, 1] (fixed)."""

    def call(self, x):
        floor = 10 ** (-sp.DB_RANGE / 10)
        db = 10.0 * ops.log(ops.maximum(x, floor)) / np.log(10.0)
        return (ops.clip(db, -sp.DB_RANGE, 0.0) + sp.DB_RANGE) / sp.DB_RANGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionPooling(keras.layers.Layer):
    """Softmax-weighted average over all positions of a (B, H, W, C) map -> (B, C)."""

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.score = self.add_weight(name="score_kernel", shape=(c, 1), initializer="glorot_uniform")
        self.score_bias = self.add_weight(name="score_bias", shape=(1,), initializer="zeros")

    def call(self, x):
        b_shape = ops.shape(x)
        flat = ops.reshape(x, (b_shape[0], -1, b_shape[-1]))
        w = ops.softmax(ops.matmul(flat, ops.cast(self.score, x.dtype)) + ops.cast(self.score_bias, x.dtype), axis=1)
        return ops.sum(flat * w, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


MAG_LAYERS = {"pwl": MagPWL, "pcen": MagPCEN, "db": MagDB}

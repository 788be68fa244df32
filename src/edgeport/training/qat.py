"""Quantization-aware fine-tuning: the forward pass sees kernels on the converter's INT8 grid.

The grid is the TFLite full-integer one: symmetric, per output channel, integers in [-127, 127],
scale = max|w| / 127 over the channel. Float weights are kept as shadow copies: before each forward
pass the kernels are replaced by their grid values, gradients are taken there (straight-through), the
float copies are restored and updated. Nothing fake-quantized is left in the saved model.
"""

from __future__ import annotations

import contextlib

import numpy as np

QMAX = 127


def quantizable_kernels(model) -> list[tuple[object, str]]:
    """(variable, kind) for every conv / depthwise / dense kernel; kind is 'last' or 'depthwise'."""
    import keras

    out = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out.append((layer.kernel, "depthwise"))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D, keras.layers.Dense)):
            out.append((layer.kernel, "last"))
    return out


def int8_grid(w: np.ndarray, kind: str = "last") -> np.ndarray:
    """Numpy reference: ``w`` rounded onto the symmetric per-channel INT8 grid (what the converter stores)."""
    w = np.asarray(w, np.float32)
    if kind == "depthwise":  # (kh, kw, in, mult): TFLite channels are in*mult
        flat = w.reshape(w.shape[0], w.shape[1], -1)
        return int8_grid(flat, "last").reshape(w.shape)
    red = tuple(range(w.ndim - 1))
    scale = np.max(np.abs(w), axis=red, keepdims=True) / QMAX
    scale = np.where(scale > 0, scale, 1.0)
    return (np.clip(np.round(w / scale), -QMAX, QMAX) * scale).astype(np.float32)


def fake_quant(w, kind: str = "last"):
    """TensorFlow version of ``int8_grid`` (round half away from zero like numpy's rint? see note)."""
    import tensorflow as tf

    shape = tf.shape(w)
    if kind == "depthwise":
        w2 = tf.reshape(w, (shape[0], shape[1], -1))
        return tf.reshape(fake_quant(w2, "last"), shape)
    red = list(range(len(w.shape) - 1))
    scale = tf.reduce_max(tf.abs(w), axis=red, keepdims=True) / QMAX
    scale = tf.where(scale > 0, scale, tf.ones_like(scale))
    # tf.round rounds half to even, as numpy's np.round does
    return tf.clip_by_value(tf.round(w / scale), -QMAX, QMAX) * scale


@contextlib.contextmanager
def quantized_kernels(kernels):
    """Within the block every kernel holds its INT8-grid value; the float values come back on exit."""
    import tensorflow as tf

    saved = [tf.identity(v.value) for v, _ in kernels]
    for v, kind in kernels:
        v.assign(fake_quant(v.value, kind))
    try:
        yield
    finally:
        for (v, _), s in zip(kernels, saved, strict=True):
            v.assign(s)


def freeze_batchnorm(model) -> int:
    """BatchNorm layers to inference mode with frozen statistics (Keras 3: trainable=False). Returns count."""
    import keras

    n = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            n += 1
    return n

"""The compact DS-CNN (seed 004) and the audio model registry.

frontend -> stem 3x3 stride (1,2) -> 4 stages (32/64/128/256 x alpha filters, 2/3/4/2 x depth_multiplier
blocks, inverted residual + squeeze-excitation) -> 1x1 embedding conv -> GAP or attention pooling ->
dropout -> Dense ``logits`` -> Activation ``sigmoid``. Channel counts are multiples of 8.
"""

from __future__ import annotations

from collections.abc import Callable

from edgeport.errors import ConfigError
from edgeport.families.audio.model_config import (
    EMBEDDING_LAYER,
    LOGITS_LAYER,
    NORMALIZE_LAYER,
    SIGMOID_LAYER,
    AudioModelConfig,
)
from edgeport.registry import Registry

#: Audio architectures: name -> builder(cfg) -> keras.Model. Add one with ``MODELS.register``.
MODELS: Registry[Callable] = Registry("audio model", ConfigError)

STAGE_FILTERS = (32, 64, 128, 256)
STAGE_REPEATS = (2, 3, 4, 2)
#: BatchNorm momentum. 0.99 left short runs with stale statistics (constant outputs in inference mode).
BN_MOMENTUM = 0.9


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` without going 10% below it (MobileNet rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _frontend(x, cfg: AudioModelConfig):
    from keras import layers

    from edgeport.families.audio import layers as fl

    fe = cfg.audio_frontend
    if fe == "hybrid":
        x = fl.MelMixer(cfg.num_mels, cfg.sample_rate, cfg.fft_length, trainable=cfg.frontend_trainable,
                        name="mel_mixer")(x)
        x = fl.MaxNormalize(name=NORMALIZE_LAYER)(x)
    elif fe == "raw":
        n = cfg.chunk_samples
        stride = 8
        frames = -(-n // stride)
        pool = max(1, frames // cfg.spec_width)
        x = layers.Reshape((1, n, 1), name="raw_reshape")(x)
        x = layers.Conv2D(cfg.num_mels, (1, 16), strides=(1, stride), padding="same", use_bias=False,
                          name="raw_filterbank")(x)  # always learned: there is no fixed filterbank to keep
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="raw_bn")(x)
        x = layers.ReLU(6.0, name="raw_relu6")(x)
        if pool > 1:
            x = layers.AveragePooling2D((1, pool), name="raw_pool")(x)
        extra = frames // pool - cfg.spec_width
        if extra > 0:
            x = layers.Cropping2D(((0, 0), (0, extra)), name="raw_crop")(x)
        x = layers.Permute((3, 2, 1), name="raw_to_bins_first")(x)  # (mels, T, 1)
    if fe in ("hybrid", "raw") and cfg.mag_scale != "none":
        x = fl.MAG_LAYERS[cfg.mag_scale](name=f"mag_{cfg.mag_scale}")(x)
    return x


def _conv_bn(x, filters, kernel, strides, name, act=True):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if act else x


def _se(x, channels, reduction, name):
    from keras import layers

    r = make_divisible(max(8, channels // reduction))
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    s = layers.Conv2D(r, 1, activation="relu", name=f"{name}_se_reduce")(s)
    s = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_se_expand")(s)
    return layers.Multiply(name=f"{name}_se_scale")([x, s])


def _block(x, in_ch, out_ch, stride, cfg: AudioModelConfig, name):
    from keras import layers

    shortcut = x
    if cfg.use_inverted_residual:
        mid = make_divisible(in_ch * cfg.expansion_factor)
        y = _conv_bn(x, mid, 1, 1, f"{name}_expand")
    else:
        mid, y = in_ch, x
    y = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_dw_relu6")(y)
    if cfg.use_se:
        y = _se(y, mid, cfg.se_reduction, name)
    if cfg.use_inverted_residual:
        y = _conv_bn(y, out_ch, 1, 1, f"{name}_project", act=False)
        if stride == 1 and in_ch == out_ch:
            y = layers.Add(name=f"{name}_add")([shortcut, y])
        return y
    return _conv_bn(y, out_ch, 1, 1, f"{name}_pw")


@MODELS.register("dscnn")
def build_dscnn(cfg: AudioModelConfig):
    """Build the DS-CNN for ``cfg`` (input shape from its frontend, ``num_classes`` outputs)."""
    import keras
    from keras import layers

    from edgeport.families.audio import layers as fl

    if cfg.num_classes <= 0:
        raise ConfigError("The model needs at least one class (num_classes is 0)")
    inp = keras.Input(shape=cfg.input_shape, name="input")
    x = _frontend(inp, cfg)
    ch = make_divisible(STAGE_FILTERS[0] * cfg.alpha)
    x = _conv_bn(x, ch, 3, (1, 2), "stem")
    for s, (f, r) in enumerate(zip(STAGE_FILTERS, STAGE_REPEATS, strict=True)):
        out_ch = make_divisible(f * cfg.alpha)
        for i in range(r * cfg.depth_multiplier):
            x = _block(x, ch, out_ch, 2 if i == 0 else 1, cfg, f"stage{s + 1}_block{i + 1}")
            ch = out_ch
    x = _conv_bn(x, make_divisible(cfg.embeddings_size), 1, 1, "embedding")
    if cfg.use_attention_pooling:
        x = fl.AttentionPooling(name=EMBEDDING_LAYER)(x)
    else:
        x = layers.GlobalAveragePooling2D(name=EMBEDDING_LAYER)(x)
    x = layers.Dropout(cfg.dropout, name="dropout")(x)
    logits = layers.Dense(cfg.num_classes, name=LOGITS_LAYER, dtype="float32")(x)
    out = layers.Activation("sigmoid", name=SIGMOID_LAYER, dtype="float32")(logits)
    return keras.Model(inp, out, name=cfg.model)


def build_model(cfg: AudioModelConfig):
    """Build the registered architecture ``cfg.model``."""
    return MODELS.get(cfg.model)(cfg)

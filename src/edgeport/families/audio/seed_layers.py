"""edgeport's implementations of the Keras layer classes that the seed system's ``.keras`` files name.

The seed system (birdnet-stm32) saves its models with one layer class of its own, ``AudioFrontendLayer``
(registered name ``AudioFrontendLayer``, no package). So that those files load with ``safe_mode=True``
without running the seed system's code, edgeport registers its own class under that name, built from the
saved layer config (mode, mel bands, sample rate, magnitude scaling, ...) with the same sub-layers, so the
saved weights (mel mixer, magnitude-scaling branches, raw-mode window and DFT kernels) load into it.

What the layer computes (layout (batch, bins, frames, 1) in, (batch, mel_bins, spec_width, 1) out):

- ``precomputed``: the input cropped to ``spec_width`` frames (mel and scaling were applied before the model);
- ``hybrid``: linear STFT magnitudes with ``fft_length // 2 + 1`` bins, cropped to ``spec_width`` frames,
  zero bins appended up to a multiple of 8, a 1x1 convolution over the bins (the mel mixer), ReLU, then the
  magnitude scaling;
- ``raw``: a waveform (batch, samples, 1) cut into ``spec_width`` frames of ``samples // spec_width``, a Hann
  window and a DFT as 1x1 convolutions, ``sqrt(re^2 + im^2 + 1e-8)``, the mel mixer, ReLU, the scaling.

Magnitude scalings, each made of per-band 1x1 depthwise convolutions (weights from the file):
``pwl`` = k0(x) + sum_i k_i(relu(s_i(x))) (``s_i`` with a bias: x - knot); ``pcen`` = relu(k1(y0) +
k2(relu(s(y0)))) with y0 = relu(x - agc(avgpool^K(x))); ``db`` = 10 log10(max(x, 1e-6)); ``none``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

#: the registered name the seed system's files give the class
SEED_FRONTEND_NAME = "AudioFrontendLayer"
MODES = ("precomputed", "hybrid", "raw")
MAG_SCALES = ("none", "pwl", "pcen", "db")
#: initial values of a freshly built layer (the files carry trained ones): pwl knots and slopes; pcen
PWL_KNOTS = (0.10, 0.35, 0.65)
PWL_SLOPE0, PWL_SLOPES = 0.40, (0.25, 0.15, 0.08)
PCEN_INIT = {"agc": 0.6, "k1": 0.15, "shift_bias": -0.2, "k2mk1": 0.45}
DB_EPS = 1e-6
RAW_EPS = 1e-8


def _pad8(n: int) -> int:
    return (8 - n % 8) % 8


def _dw(name: str, trainable: bool, value: float, bias: float | None = None) -> layers.DepthwiseConv2D:
    """1x1 depthwise convolution = per-band gain (+ bias)."""
    return layers.DepthwiseConv2D((1, 1), padding="same", use_bias=bias is not None, name=name, trainable=trainable,
                                  depthwise_initializer=keras.initializers.Constant(value),
                                  bias_initializer=keras.initializers.Constant(0.0 if bias is None else bias))


def _conv1x1(filters: int, name: str, trainable: bool, **kw) -> layers.Conv2D:
    return layers.Conv2D(filters, (1, 1), padding="same", use_bias=False, name=name, trainable=trainable, **kw)


class AudioFrontendLayer(keras.layers.Layer):
    """The seed system's audio frontend layer (see the module docstring); config keys as in its files."""

    def __init__(self, mode: str, mel_bins: int, spec_width: int, sample_rate: int, chunk_duration: int,
                 fft_length: int = 512, pcen_K: int = 4, init_mel: bool = True, mel_fmin: float = 150.0,
                 mel_fmax: float | None = None, mel_norm: str = "slaney", mag_scale: str = "none",
                 name: str = "audio_frontend", is_trainable: bool = False, **kwargs):
        super().__init__(name=name, **kwargs)
        if mode not in MODES:
            raise ValueError(f"AudioFrontendLayer mode '{mode}' is not one of {list(MODES)}")
        if mag_scale not in MAG_SCALES:
            raise ValueError(f"AudioFrontendLayer mag_scale '{mag_scale}' is not one of {list(MAG_SCALES)}")
        self.mode, self.mag_scale = mode, mag_scale
        self.mel_bins, self.spec_width, self.sample_rate = int(mel_bins), int(spec_width), int(sample_rate)
        self.chunk_duration, self.fft_length, self.pcen_K = int(chunk_duration), int(fft_length), int(pcen_K)
        self.init_mel, self.mel_fmin, self.mel_fmax, self.mel_norm = bool(init_mel), float(mel_fmin), mel_fmax, mel_norm
        self.is_trainable = bool(is_trainable)
        t = self.is_trainable
        # sub-layers under the attribute names the saved weights are stored by
        self.mel_mixer = _conv1x1(self.mel_bins, f"{name}_mel_mixer", False,
                                  kernel_constraint=keras.constraints.NonNeg())
        if mode == "raw":
            self.frame_len = max(8, self.sample_rate * self.chunk_duration // max(1, self.spec_width))
            self.v2d_window_dw = _dw(f"{name}_v2d_window_dw", t, 1.0)
            self.v2d_dft_real = _conv1x1(self.frame_len // 2 + 1, f"{name}_v2d_dft_real", t)
            self.v2d_dft_imag = _conv1x1(self.frame_len // 2 + 1, f"{name}_v2d_dft_imag", t)
        if mag_scale == "pwl":
            self._pwl_k0_dw = _dw(f"{name}_pwl_k0_dw", t, PWL_SLOPE0)
            self._pwl_shift_dws = [_dw(f"{name}_pwl_shift{i}_dw", t, 1.0, -k) for i, k in enumerate(PWL_KNOTS, 1)]
            self._pwl_k_dws = [_dw(f"{name}_pwl_k{i}_dw", t, a) for i, a in enumerate(PWL_SLOPES, 1)]
        if mag_scale == "pcen":
            self._pcen_pools = [layers.AveragePooling2D((1, 3), strides=(1, 1), padding="same",
                                                        name=f"{name}_pcen_ema{k}") for k in range(self.pcen_K)]
            self._pcen_agc_dw = _dw(f"{name}_pcen_agc_dw", t, PCEN_INIT["agc"])
            self._pcen_k1_dw = _dw(f"{name}_pcen_k1_dw", t, PCEN_INIT["k1"])
            self._pcen_shift_dw = _dw(f"{name}_pcen_shift_dw", t, 1.0, PCEN_INIT["shift_bias"])
            self._pcen_k2mk1_dw = _dw(f"{name}_pcen_k2mk1_dw", t, PCEN_INIT["k2mk1"])

    # ------------------------------------------------------------------ build
    def _mixer_inputs(self) -> int:
        n = (self.frame_len if self.mode == "raw" else self.fft_length) // 2 + 1
        return n + _pad8(n)

    def _mel_basis(self, n_fft: int) -> np.ndarray:
        import librosa

        fmax = float(self.mel_fmax) if self.mel_fmax is not None else float(self.sample_rate // 2)
        fb = librosa.filters.mel(sr=self.sample_rate, n_fft=n_fft, n_mels=self.mel_bins, fmin=self.mel_fmin,
                                 fmax=fmax, htk=False, norm=self.mel_norm).T.astype(np.float32)
        out = np.zeros((1, 1, self._mixer_inputs(), self.mel_bins), np.float32)
        out[0, 0, : fb.shape[0]] = fb
        return out

    def build(self, input_shape):
        if self.mode == "precomputed":
            return super().build(input_shape)
        cin = self._mixer_inputs()
        self.mel_mixer.build((None, 1, None, cin))
        if self.init_mel:
            self.mel_mixer.set_weights([self._mel_basis(self.frame_len if self.mode == "raw" else self.fft_length)])
        if self.mode == "raw":
            self._build_raw()
        band = (None, 1, None, self.mel_bins)
        for sub in self._scaling_layers():
            sub.build(band)
        super().build(input_shape)

    def _build_raw(self) -> None:
        n, k = self.frame_len, self.frame_len // 2 + 1
        cin = n + _pad8(n)
        window = np.zeros(cin, np.float32)
        window[:n] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / max(1, n - 1))  # symmetric Hann
        self.v2d_window_dw.build((None, 1, None, cin))
        self.v2d_window_dw.set_weights([window.reshape(1, 1, cin, 1)])
        angle = 2.0 * np.pi * np.outer(np.arange(cin), np.arange(k)) / n
        inside = (np.arange(cin) < n)[:, None]
        for conv, kernel in ((self.v2d_dft_real, np.cos(angle)), (self.v2d_dft_imag, -np.sin(angle))):
            conv.build((None, 1, None, cin))
            conv.set_weights([(kernel * inside).astype(np.float32)[None, None]])

    def _scaling_layers(self) -> list:
        if self.mag_scale == "pwl":
            return [self._pwl_k0_dw, *self._pwl_shift_dws, *self._pwl_k_dws]
        if self.mag_scale == "pcen":
            return [*self._pcen_pools, self._pcen_agc_dw, self._pcen_k1_dw, self._pcen_shift_dw, self._pcen_k2mk1_dw]
        return []

    # ------------------------------------------------------------------ call
    @staticmethod
    def _pad_channels(x, to: int):
        extra = to - int(x.shape[-1])
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]]) if extra > 0 else x

    def _scale(self, x):
        if self.mag_scale == "pwl":
            y = self._pwl_k0_dw(x)
            for shift, gain in zip(self._pwl_shift_dws, self._pwl_k_dws, strict=True):
                y = y + gain(ops.relu(shift(x)))
            return y
        if self.mag_scale == "pcen":
            m = x
            for pool in self._pcen_pools:
                m = pool(m)
            y0 = ops.relu(x - self._pcen_agc_dw(m))
            return ops.relu(self._pcen_k1_dw(y0) + self._pcen_k2mk1_dw(ops.relu(self._pcen_shift_dw(y0))))
        if self.mag_scale == "db":
            return 10.0 * ops.log(ops.maximum(x, DB_EPS)) / np.log(10.0)
        return x

    def _raw_spectrum(self, x):
        n = self.frame_len
        x = ops.reshape(x[:, : n * self.spec_width, :], (-1, self.spec_width, n, 1))
        x = self._pad_channels(ops.transpose(x, (0, 3, 1, 2)), n + _pad8(n))  # (B, 1, T, frame)
        x = self.v2d_window_dw(x)
        re, im = self.v2d_dft_real(x), self.v2d_dft_imag(x)
        return ops.sqrt(ops.maximum(re * re + im * im, 0.0) + RAW_EPS)

    def call(self, inputs, training=None):
        if self.mode == "precomputed":
            return inputs[:, :, : self.spec_width, :]
        if self.mode == "hybrid":
            bins = self.fft_length // 2 + 1
            if inputs.shape[1] is not None and int(inputs.shape[1]) != bins:
                raise ValueError(f"AudioFrontendLayer (hybrid) takes {bins} bins, got input {tuple(inputs.shape)}")
            spec = ops.transpose(inputs, (0, 3, 2, 1))[:, :, : self.spec_width, :]  # (B, 1, T, bins)
        else:
            spec = self._raw_spectrum(inputs)
        y = ops.relu(self.mel_mixer(self._pad_channels(spec, self._mixer_inputs())))
        return ops.transpose(self._scale(y), (0, 3, 2, 1))[:, :, : self.spec_width, :]

    def compute_output_shape(self, input_shape):
        if self.mode == "precomputed":
            return (input_shape[0], input_shape[1], self.spec_width, input_shape[3])
        return (input_shape[0], self.mel_bins, self.spec_width, 1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "mel_bins": self.mel_bins, "spec_width": self.spec_width,
                "sample_rate": self.sample_rate, "chunk_duration": self.chunk_duration, "fft_length": self.fft_length,
                "pcen_K": self.pcen_K, "init_mel": self.init_mel, "mel_fmin": self.mel_fmin, "mel_fmax": self.mel_fmax,
                "mel_norm": self.mel_norm, "mag_scale": self.mag_scale, "is_trainable": self.is_trainable}


def int8_float_layers(model) -> tuple[str, ...]:
    """Layers of a model holding the seed system's hybrid frontend that stay float in edgeport's full INT8: the
    whole ``AudioFrontendLayer`` (cropping, bin padding, mel mixer, magnitude scaling), so the [0, 1] input is
    not rounded to 1/255 steps before the mel mixer (half the values of a min-max scaled |STFT| lie below
    three such steps). Measured on the seed system's published checkpoint (docs/seed-models.md,
    benchmarks/interop_stm32.py)."""
    return tuple(layer.name for layer in getattr(model, "layers", [])
                 if isinstance(layer, AudioFrontendLayer) and layer.mode == "hybrid")


#: registered names of the seed system's classes -> edgeport's implementations
SEED_CLASSES = {SEED_FRONTEND_NAME: AudioFrontendLayer}
keras.saving.get_custom_objects().update(SEED_CLASSES)

__all__ = ["SEED_CLASSES", "SEED_FRONTEND_NAME", "AudioFrontendLayer"]

"""Tiny models with one layer made hostile to INT8: one channel of an inner activation has a range ~2000x
the others, so a per-tensor activation scale rounds every other channel of that tensor to zero.

- ``keras_hostile_handle``: Dense ``d1`` -> Dense ``hostile`` (tanh; its pre-activation carries the huge
  channel) -> Dense ``d3`` -> Dense ``logits``. Keeping layer ``hostile`` float (its FULLY_CONNECTED and TANH)
  repairs the full-integer TFLite artifact.
- ``torch_hostile_handle``: ``stem`` -> ``hostile`` (``fc_in``, a per-channel gain of 2000 on channel 0,
  ``fc_out`` with that channel's weights divided back) -> ``head``. Float, the gain cancels; in static QDQ the
  input of ``hostile.fc_out`` is quantized with one scale, and keeping that Linear float repairs it.
"""

from __future__ import annotations

import numpy as np

from edgeport.sources.base import ModelHandle, TensorSpec

GAIN = 2000.0
IN, HIDDEN, OUT = 16, 32, 10


def feeds(n: int = 128, seed: int = 0) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).normal(size=(n, IN)).astype(np.float32)}


def keras_hostile_model():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((IN,), name="x")
    h = keras.layers.Dense(HIDDEN, activation="relu", name="d1")(inp)
    h = keras.layers.Dense(HIDDEN, activation="tanh", name="hostile")(h)
    h = keras.layers.Dense(HIDDEN, activation="relu", name="d3")(h)
    out = keras.layers.Dense(OUT, name="logits")(h)
    model = keras.Model(inp, out)
    w, b = model.get_layer("hostile").get_weights()
    w[:, 0] *= GAIN
    model.get_layer("hostile").set_weights([w, b])
    return model


def keras_hostile_handle() -> ModelHandle:
    return ModelHandle(name="hostile_keras", framework="keras", model=keras_hostile_model(),
                       inputs=(TensorSpec("x", (None, IN)),), outputs=(TensorSpec("logits", (None, OUT)),),
                       reference_inputs=lambda n=200, seed=0: feeds(n, 100 + seed), calibration_inputs=feeds)


def torch_hostile_model():
    import torch
    from torch import nn

    class Hostile(nn.Module):
        def __init__(self, d: int):
            super().__init__()
            self.fc_in = nn.Linear(d, d)
            self.fc_out = nn.Linear(d, d)
            gain = torch.ones(d)
            gain[0] = GAIN
            self.register_buffer("gain", gain)
            with torch.no_grad():
                self.fc_out.weight[:, 0] /= GAIN

        def forward(self, x):
            return self.fc_out(self.fc_in(x) * self.gain)

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.stem = nn.Linear(IN, HIDDEN)
            self.hostile = Hostile(HIDDEN)
            self.head = nn.Linear(HIDDEN, OUT)

        def forward(self, x):
            return self.head(torch.relu(self.hostile(torch.relu(self.stem(x)))))

    return Toy().eval()


def torch_hostile_handle() -> ModelHandle:
    return ModelHandle(name="hostile_torch", framework="torch", model=torch_hostile_model(),
                       inputs=(TensorSpec("x", (None, IN)),), outputs=(TensorSpec("logits", (None, OUT)),),
                       reference_inputs=lambda n=200, seed=0: feeds(n, 100 + seed), calibration_inputs=feeds)

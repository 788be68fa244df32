"""Tiny seeded PyTorch models for exporter and runner tests.

``GeoLike`` mimics the geo family's export wrapper: (batch, 3) [lat, lon, week] -> sigmoid probabilities,
with a sin/cos harmonic encoding of the raw coordinates in a submodule named ``encoding``, LayerNorm with
eps 1e-4 and exact GELU. ``MultiOut`` returns two named outputs whose order differs from the alphabetical one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from edgeport.sources.base import ModelHandle, TensorSpec


class HarmonicEncoding(nn.Module):
    """sin/cos of k * angle for k = 1..n, for lat and lon (degrees) and week (1..48)."""

    def __init__(self, harmonics: int = 8):
        super().__init__()
        self.register_buffer("k", torch.arange(1, harmonics + 1, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lat = x[:, 0:1] * (math.pi / 180.0)
        lon = x[:, 1:2] * (math.pi / 180.0)
        week = (x[:, 2:3] - 1.0) * (2.0 * math.pi / 48.0)
        parts = []
        for a in (lat, lon, week):
            ka = a * self.k
            parts += [torch.sin(ka), torch.cos(ka)]
        return torch.cat(parts, dim=1)


class Block(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-4)
        self.fc1 = nn.Linear(dim, dim * 2)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * 2, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class GeoLike(nn.Module):
    """(batch, 3) -> (batch, n_species) probabilities."""

    def __init__(self, n_species: int = 300, dim: int = 128, blocks: int = 2, harmonics: int = 8, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.encoding = HarmonicEncoding(harmonics)
        self.embed = nn.Linear(6 * harmonics, dim)
        self.blocks = nn.Sequential(*[Block(dim) for _ in range(blocks)])
        self.norm = nn.LayerNorm(dim, eps=1e-4)
        self.head = nn.Linear(dim, n_species)
        with torch.no_grad():  # seeded, spread-out weights so probabilities span 0.01..0.9 and vary with input
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(p.shape[-1]) if p.ndim > 1 else 0.1))
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
            self.head.weight.mul_(1.5)
            self.head.bias.copy_(torch.randn(n_species, generator=g) - 2.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.encoding(x))
        h = self.blocks(h)
        return torch.sigmoid(self.head(self.norm(h)))


class MultiOut(nn.Module):
    """Two inputs, two outputs returned as a dict in the order (zeta, alpha): not alphabetical on purpose."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Linear(8, 64)
        self.b = nn.Linear(4, 64)
        self.z = nn.Linear(64, 10)
        self.al = nn.Linear(64, 6)
        with torch.no_grad():
            self.z.weight.mul_(4.0)
            self.al.weight.mul_(4.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.a(x) + self.b(y))
        return {"zeta": torch.sigmoid(self.z(h)), "alpha": self.al(h)}


def geo_inputs(n: int, seed: int) -> dict[str, np.ndarray]:
    """Uniform lat, lon, week rows plus the hard cases (poles, date line, weeks 1 and 48)."""
    rng = np.random.default_rng(seed)
    x = np.stack(
        [rng.uniform(-90, 90, n), rng.uniform(-180, 180, n), rng.integers(1, 49, n).astype(np.float64)], axis=1
    )
    hard = np.array([[90, 180, 1], [-90, -180, 48], [0, 180, 48], [0, -180, 1], [89.9, 179.9, 24]])
    x[: min(n, len(hard))] = hard[: min(n, len(hard))]
    return {"input": x.astype(np.float32)}


def geo_handle(**kw) -> ModelHandle:
    model = GeoLike(**kw).eval()
    n_species = model.head.out_features
    return ModelHandle(
        name="geolike",
        framework="torch",
        model=model,
        inputs=(TensorSpec("input", (None, 3)),),
        outputs=(TensorSpec("probabilities", (None, n_species)),),
        family="geo",
        keep_float=("encoding",),
        reference_inputs=geo_inputs,
        calibration_inputs=geo_inputs,
    )


def multi_inputs(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 8)).astype(np.float32), "y": rng.normal(size=(n, 4)).astype(np.float32)}


def multi_handle() -> ModelHandle:
    return ModelHandle(
        name="multi",
        framework="torch",
        model=MultiOut().eval(),
        inputs=(TensorSpec("x", (None, 8)), TensorSpec("y", (None, 4))),
        outputs=(TensorSpec("zeta", (None, 10)), TensorSpec("alpha", (None, 6))),
        reference_inputs=multi_inputs,
        calibration_inputs=multi_inputs,
    )


def torch_outputs(handle: ModelHandle, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = handle.model(*[torch.from_numpy(feeds[n]) for n in handle.input_names])
    if isinstance(out, torch.Tensor):
        out = (out,)
    if isinstance(out, dict):
        out = tuple(out[n] for n in handle.output_names)
    return {n: o.numpy() for n, o in zip(handle.output_names, out, strict=True)}

"""The geo model: (lat, lon, week) -> species logits (+ an auxiliary environment head).

Layout (SPEC §5): a harmonic encoding of the raw inputs (its own submodule, ``encoding``, so that
quantizers and FP16 converters can keep every op that touches raw coordinates in float), a linear
embedding, residual MLP blocks FiLM-conditioned on the week encoding, a low-rank species head and an
environment head. Only plain ops (mul, sin, cos, cat, linear, layer_norm, gelu, tanh) are used so that
torch.onnx (dynamo) and litert-torch convert it to builtin operators.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LAYER_NORM_EPS = 1e-4
WEEKS_PER_YEAR = 48
DEG_TO_RAD = math.pi / 180.0
WEEK_TO_RAD = 2.0 * math.pi / WEEKS_PER_YEAR
ENCODER_EXPANSION = 2
SPECIES_EXPANSION = 1


def geo_sizes(model_scale: float) -> dict[str, int]:
    """Layer sizes for a ``model_scale`` s (SPEC §5 formulas)."""
    s = float(model_scale)
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"model_scale must be a positive number, got {model_scale!r}")
    return {
        "embed_dim": max(64, round(512 * s / 64) * 64),
        "encoder_blocks": max(1, round(4 * s)),
        "species_blocks": max(1, round(2 * s)),
        "head_bottleneck": max(32, round(128 * s / 32) * 32),
    }


class HarmonicEncoding(nn.Module):
    """Raw (lat, lon, week) -> sin/cos features for k = 1..harmonics.

    Returns ``(features, week_features)``: features = [lat, lon, week] encodings concatenated
    (4 * coord_harmonics + 2 * week_harmonics wide) and the week encoding alone (for FiLM).
    Every op on raw coordinates lives here, up to and including sin/cos.
    """

    def __init__(self, coord_harmonics: int = 8, week_harmonics: int = 8):
        super().__init__()
        self.coord_harmonics = int(coord_harmonics)
        self.week_harmonics = int(week_harmonics)
        # Frequencies folded with the unit conversion: angle_k = raw * (k * scale), one multiply per input.
        coord_freq = torch.arange(1, self.coord_harmonics + 1, dtype=torch.float32) * DEG_TO_RAD
        week_freq = torch.arange(1, self.week_harmonics + 1, dtype=torch.float32) * WEEK_TO_RAD
        self.register_buffer("coord_freq", coord_freq, persistent=False)
        self.register_buffer("week_freq", week_freq, persistent=False)

    @property
    def out_features(self) -> int:
        return 4 * self.coord_harmonics + 2 * self.week_harmonics

    @property
    def week_features(self) -> int:
        return 2 * self.week_harmonics

    def forward(self, lat: torch.Tensor, lon: torch.Tensor, week: torch.Tensor):
        lat_a = lat.unsqueeze(-1) * self.coord_freq
        lon_a = lon.unsqueeze(-1) * self.coord_freq
        week_a = (week.unsqueeze(-1) - 1.0) * self.week_freq
        week_enc = torch.cat([torch.sin(week_a), torch.cos(week_a)], dim=-1)
        features = torch.cat(
            [torch.sin(lat_a), torch.cos(lat_a), torch.sin(lon_a), torch.cos(lon_a), week_enc], dim=-1
        )
        return features, week_enc


class FiLMResidualBlock(nn.Module):
    """x + W2 GELU(W1 (LN(x) * (1 + tanh(Wg w)) + Wb w)): pre-norm residual MLP, FiLM on the week."""

    def __init__(self, dim: int, cond_dim: int, expansion: int = 1):
        super().__init__()
        hidden = dim * expansion
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.film_gamma = nn.Linear(cond_dim, dim)
        self.film_beta = nn.Linear(cond_dim, dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        h = h * (1.0 + torch.tanh(self.film_gamma(cond))) + self.film_beta(cond)
        return x + self.fc2(self.act(self.fc1(h)))


class GeoModel(nn.Module):
    """(lat, lon, week) in degrees / week 1..48 -> {"species_logits"[, "env"]}.

    ``model_scale`` sets every size (see :func:`geo_sizes`); 0.75 with 12,012 species is ~3.6 M parameters.
    """

    def __init__(
        self,
        n_species: int,
        n_env_features: int = 16,
        model_scale: float = 1.0,
        coord_harmonics: int = 8,
        week_harmonics: int = 8,
    ):
        super().__init__()
        for name, value in (("n_species", n_species), ("n_env_features", n_env_features),
                            ("coord_harmonics", coord_harmonics), ("week_harmonics", week_harmonics)):
            if int(value) != value or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        sizes = geo_sizes(model_scale)
        self.config = {
            "n_species": int(n_species),
            "n_env_features": int(n_env_features),
            "model_scale": float(model_scale),
            "coord_harmonics": int(coord_harmonics),
            "week_harmonics": int(week_harmonics),
        }
        self.sizes = sizes
        d = sizes["embed_dim"]
        self.encoding = HarmonicEncoding(coord_harmonics, week_harmonics)
        cond = self.encoding.week_features
        self.embed = nn.Linear(self.encoding.out_features, d)
        self.encoder = nn.ModuleList(
            FiLMResidualBlock(d, cond, ENCODER_EXPANSION) for _ in range(sizes["encoder_blocks"])
        )
        self.env_head = nn.Sequential(nn.LayerNorm(d, eps=LAYER_NORM_EPS), nn.Linear(d, int(n_env_features)))
        self.species_blocks = nn.ModuleList(
            FiLMResidualBlock(d, cond, SPECIES_EXPANSION) for _ in range(sizes["species_blocks"])
        )
        self.species_norm = nn.LayerNorm(d, eps=LAYER_NORM_EPS)
        self.species_down = nn.Linear(d, sizes["head_bottleneck"], bias=False)
        self.species_out = nn.Linear(sizes["head_bottleneck"], int(n_species))

    @property
    def n_species(self) -> int:
        return self.config["n_species"]

    def forward(self, lat: torch.Tensor, lon: torch.Tensor, week: torch.Tensor, return_env: bool = False):
        features, week_enc = self.encoding(lat, lon, week)
        x = self.embed(features)
        for block in self.encoder:
            x = block(x, week_enc)
        out = {}
        h = x
        for block in self.species_blocks:
            h = block(h, week_enc)
        out["species_logits"] = self.species_out(self.species_down(self.species_norm(h)))
        if return_env:
            out["env"] = self.env_head(x)
        return out


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""Species + disease models (seed 002): a backbone giving an embedding, a species head, one disease head per
species. ``forward(x)`` returns ``(species_logits, embedding)``; the heads are ``disease_heads``, an
``nn.ModuleDict`` from species name to ``nn.Linear(embedding_dim, n_diseases)``.

Backbones: ``cnn`` (a small CNN, the demo and test default) and ``swin_tiny`` (Hugging Face ``transformers``
``SwinModel`` with Swin-Tiny's configuration, random init, no download; its 768-dim pooled output is the
embedding).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

BACKBONES = ("cnn", "swin_tiny")
SWIN_TINY = {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7}


class SmallCNN(nn.Module):
    """Three stride-2 conv blocks (Conv-BN-ReLU) and global average pooling: ``(N,3,H,W) -> (N, 4*width)``."""

    def __init__(self, width: int = 16):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.out_dim = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class SwinBackbone(nn.Module):
    """Swin-Tiny from ``transformers`` (random init): the pooled 768-dim output."""

    def __init__(self, image_size: int = 224):
        super().__init__()
        from transformers import SwinConfig, SwinModel

        cfg = SwinConfig(image_size=int(image_size), **SWIN_TINY)
        self.swin = SwinModel(cfg, add_pooling_layer=True)
        self.out_dim = int(self.swin.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.swin(pixel_values=x).pooler_output


class HierarchicalModel(nn.Module):
    """Backbone + species head + ``disease_heads`` (species name -> Linear)."""

    def __init__(self, class_names: list[str], disease_names: dict[str, list[str]], *, backbone: str = "cnn",
                 width: int = 16, image_size: int = 224):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone '{backbone}'; choose from {BACKBONES}")
        self.image_size = int(image_size)
        self.backbone = SmallCNN(width) if backbone == "cnn" else SwinBackbone(image_size)
        dim = self.backbone.out_dim
        self.species_head = nn.Linear(dim, len(class_names))
        self.disease_heads = nn.ModuleDict({s: nn.Linear(dim, len(disease_names[s])) for s in class_names})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone(x)
        return self.species_head(emb), emb


def build_model(backbone: str = "cnn", class_names=(), disease_names=None, width: int = 16, image_size: int = 224,
                **_: object) -> HierarchicalModel:
    """The family's factory: ``model_config`` keyword arguments -> model (extra keys such as mean/std ignored)."""
    return HierarchicalModel(list(class_names), dict(disease_names or {}), backbone=backbone, width=int(width),
                             image_size=int(image_size))


def build_from_config(cfg: dict) -> HierarchicalModel:
    return build_model(**cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

"""The species model as edgeport's generic pipeline sees it: ``input`` -> (``species_logits``, ``embedding``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgeport.families.hierarchy import INPUT_NAME, OUTPUT_NAMES

FAMILY_IMAGE_SIZE = 224


class SpeciesModel(nn.Module):
    """The user's model without its heads: what ``species*.onnx`` holds (outputs in a tuple, names kept)."""

    edgeport_outputs = OUTPUT_NAMES

    def __init__(self, model: nn.Module, image_size: int = FAMILY_IMAGE_SIZE):
        super().__init__()
        self.model = model
        self.edgeport_inputs = {INPUT_NAME: (None, 3, int(image_size), int(image_size))}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, emb = self.model(x)
        return logits, emb


def wrap_species(model: nn.Module) -> SpeciesModel:
    return SpeciesModel(model, getattr(model, "image_size", None) or FAMILY_IMAGE_SIZE)


def _images(n: int, seed: int, size: int = FAMILY_IMAGE_SIZE) -> dict[str, np.ndarray]:
    from edgeport.families.hierarchy.images import Preprocessing
    from edgeport.families.hierarchy.synthetic import leaf_image

    rng = np.random.default_rng(seed)
    pre = Preprocessing(size=size)
    x = np.stack([pre.normalise(leaf_image(int(rng.integers(0, 8)), int(rng.integers(0, 3)), size, rng))
                  for _ in range(int(n))])
    return {INPUT_NAME: x.astype(np.float32)}


def reference_inputs(n: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded synthetic leaf photos at 224 (for a family checkpoint exported through the generic pipeline)."""
    return _images(n, seed)


def calibration_inputs(n: int = 64, seed: int = 1) -> dict[str, np.ndarray]:
    return _images(n, seed + 7)

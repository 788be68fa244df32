"""What every source loader produces: one handle that exporters, runners and reports understand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (``None`` for a dimension of any size, e.g. batch) and dtype of one input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def example(self, batch: int = 1) -> np.ndarray:
        shape = tuple(batch if d is None else d for d in self.shape)
        return np.zeros(shape, dtype=self.dtype)


@dataclass
class ModelHandle:
    """A loaded model, ready to export.

    ``model`` is the framework object that exporters convert (for torch: the ``nn.Module`` with its
    export wrapper already applied, in eval mode). ``reference_inputs(n, seed)`` gives the seeded
    validation feeds; ``calibration_inputs(n, seed)`` the calibration feeds, when the family or the
    user can provide them. ``keep_float`` names submodules that stay float in every quantized format.
    """

    name: str
    framework: str
    model: Any
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    family: str | None = None
    source_path: Path | None = None
    labels_file: Path | None = None
    license_file: Path | None = None
    config: dict = field(default_factory=dict)
    keep_float: tuple[str, ...] = ()
    reference_inputs: Callable[[int, int], Feeds] | None = None
    calibration_inputs: Callable[[int, int], Feeds] | None = None
    notes: dict = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def example_feeds(self, batch: int = 1) -> Feeds:
        return {t.name: t.example(batch) for t in self.inputs}

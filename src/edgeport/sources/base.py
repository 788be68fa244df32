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


def check_model_file(path: Path, what: str, *, zip_member: str | None = None, pickle_ok: bool = False) -> None:
    """Before a framework reads ``path``: it exists, is a non-empty file, and is the container its kind
    uses (a zip archive holding ``zip_member``; or a pickle when ``pickle_ok``). One clear line otherwise."""
    import zipfile

    from edgeport.errors import SourceError

    path = Path(path)
    if not path.exists():
        raise SourceError(f"{what} not found: {path}")
    if not path.is_file():
        raise SourceError(f"{path} is a directory; pass the model file inside it")
    if path.stat().st_size == 0:
        raise SourceError(f"{path} is empty (0 bytes): the file was not written completely; export or save it again")
    if zip_member is None:
        return
    with open(path, "rb") as f:
        head = f.read(2)
    if pickle_ok and head[:1] == b"\x80":
        return
    ok = False
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                ok = any(n == zip_member or n.endswith("/" + zip_member) for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            ok = False
    if not ok:
        kind = "a zip archive" + (" or a pickle" if pickle_ok else "")
        raise SourceError(f"{path} is not a readable {what} ({kind} holding {zip_member} was expected; the file "
                          "is damaged or of another kind)")

"""Runner registry: one runner class per backend, imported only when used."""

from __future__ import annotations

import importlib
from pathlib import Path

from edgeport.errors import UnsupportedFormatError
from edgeport.registry import Registry
from edgeport.runtimes.base import Runner

#: runtime name -> "module:Class"
RUNTIMES: Registry[str] = Registry("runtime", UnsupportedFormatError)
RUNTIMES.register("torch", "edgeport.runtimes.torch:TorchRunner")
RUNTIMES.register("onnxruntime", "edgeport.runtimes.onnxruntime:OrtRunner")
RUNTIMES.register("litert", "edgeport.runtimes.litert:LiteRTRunner")
RUNTIMES.register("tf", "edgeport.runtimes.tf:SavedModelRunner")
RUNTIMES.register("keras", "edgeport.runtimes.keras:KerasRunner")


def runner_class(name: str) -> type[Runner]:
    module, cls = RUNTIMES.get(name).split(":")
    return getattr(importlib.import_module(module), cls)


def open_runner(name: str, path: Path, **kwargs) -> Runner:
    """Load an artifact with the named runtime."""
    return runner_class(name).open(Path(path), **kwargs)


__all__ = ["RUNTIMES", "Runner", "open_runner", "runner_class"]

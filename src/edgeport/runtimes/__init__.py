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


#: artifact file extension -> the runtime that runs it (a directory is a SavedModel: ``tf``); every export
#: format's extension is here with the format's runtime (tests/test_architecture.py checks it)
EXTENSIONS = {".keras": "keras", ".onnx": "onnxruntime", ".tflite": "litert"}


def runtime_for_path(path: Path) -> str:
    """The runtime that runs an artifact, from its file: a directory (SavedModel) -> tf, otherwise by its
    extension (``EXTENSIONS``: ``.keras`` -> keras, ``.tflite`` -> litert, ``.onnx`` -> onnxruntime)."""
    path = Path(path)
    if path.is_dir():
        return "tf"
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise UnsupportedFormatError(f"cannot tell how to run '{path.name}': known artifacts are "
                                     f"{', '.join([*sorted(EXTENSIONS), 'a SavedModel folder'])}")
    return EXTENSIONS[ext]


__all__ = ["EXTENSIONS", "RUNTIMES", "Runner", "open_runner", "runner_class", "runtime_for_path"]

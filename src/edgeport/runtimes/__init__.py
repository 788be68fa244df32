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


def runtime_for_path(path: Path) -> str:
    """The runtime that runs an artifact, from its file: ``.keras`` -> keras, a directory (SavedModel) -> tf,
    otherwise the runtime of the export format with that extension (``.tflite`` -> litert, ``.onnx`` ->
    onnxruntime)."""
    from edgeport.exporters import FORMATS

    path = Path(path)
    if path.is_dir():
        return "tf"
    ext = path.suffix.lower()
    if ext == ".keras":
        return "keras"
    by_ext = {spec.extension: spec.runtime for _, spec in FORMATS.items() if spec.extension}
    if ext not in by_ext:
        raise UnsupportedFormatError(f"cannot tell how to run '{path.name}': known artifacts are "
                                     f"{', '.join(['.keras', *sorted(by_ext), 'a SavedModel folder'])}")
    return by_ext[ext]


def io_dtypes(runner: Runner) -> dict[str, dict[str, str]]:
    """Input and output dtypes of a loaded artifact, by name (float I/O is checked on quantized artifacts)."""
    inputs = getattr(runner, "input_dtypes", None) or {t.name: t.dtype for t in runner.inputs}
    outputs = getattr(runner, "output_dtypes", None) or {}
    return {"inputs": dict(inputs), "outputs": dict(outputs)}


__all__ = ["RUNTIMES", "Runner", "io_dtypes", "open_runner", "runner_class", "runtime_for_path"]

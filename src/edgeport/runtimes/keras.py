"""Keras 3 runner: a ``.keras`` file (loaded in safe mode unless trusted) or an in-memory model."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import MissingDependencyError, SourceError
from edgeport.runtimes.base import Runner
from edgeport.sources.base import Feeds, ModelHandle, TensorSpec

log = logging.getLogger(__name__)

#: modules that register edgeport's own Keras layers (imported before loading, so safe mode knows them)
LAYER_MODULES = ("edgeport.families.audio.layers", "edgeport.families.audio.seed_layers")


def _keras():
    try:
        import keras
    except ImportError:
        raise MissingDependencyError("keras", "Running Keras models", "tf") from None
    return keras


def _register_layers() -> None:
    for name in LAYER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as e:  # the layers' own optional dependencies are missing: those models cannot load
            log.debug("edgeport layers in %s not registered: %s", name, e)


def _op_name(t: Any, fallback: str) -> str:
    """The name of the layer that made a symbolic tensor (an ``Input``'s name, an output layer's name)."""
    history = getattr(t, "_keras_history", None)
    op = getattr(history, "operation", None)
    return str(getattr(op, "name", None) or getattr(t, "name", None) or fallback)


class KerasRunner(Runner):
    """Runs a Keras model with ``predict_on_batch``. Feeds are matched to the model's inputs by name
    (the ``Input`` layers' names, or the handle's input names); outputs are named after the model's
    output layers (or the handle's output names)."""

    name = "keras"

    def __init__(self, model, *, input_names: list[str] | None = None, output_names: list[str] | None = None,
                 path: Path | None = None):
        self.model = model
        self.path = path
        sym_in = list(getattr(model, "inputs", None) or [])
        sym_out = list(getattr(model, "outputs", None) or [])
        if not sym_in or not sym_out:
            raise SourceError("the Keras model is not built (no inputs/outputs); build or call it once first")
        in_names = input_names if input_names and len(input_names) == len(sym_in) else \
            [_op_name(t, f"input_{i}") for i, t in enumerate(sym_in)]
        if output_names and len(output_names) == len(sym_out):
            out_names = list(output_names)
        else:
            declared = getattr(model, "output_names", None)
            out_names = list(declared) if declared and len(declared) == len(sym_out) else \
                [_op_name(t, f"output_{i}") for i, t in enumerate(sym_out)]
        self.inputs = tuple(
            TensorSpec(n, tuple(None if d is None else int(d) for d in t.shape), str(t.dtype))
            for n, t in zip(in_names, sym_in, strict=True)
        )
        self.output_names = tuple(out_names)
        self.output_dtypes = {n: str(t.dtype) for n, t in zip(out_names, sym_out, strict=True)}
        self._out_shapes = {n: tuple(1 if d is None else int(d) for d in t.shape[1:])
                            for n, t in zip(out_names, sym_out, strict=True)}

    @classmethod
    def open(cls, path: Path, *, trust_source: bool = False, **kwargs) -> KerasRunner:
        """Load a ``.keras`` file; safe mode (no arbitrary code) unless ``trust_source``."""
        from edgeport.sources.base import check_model_file

        path = Path(path)
        check_model_file(path, "Keras model file", zip_member="config.json")
        keras = _keras()
        _register_layers()
        try:
            model = keras.saving.load_model(str(path), safe_mode=not trust_source, compile=False)
        except (ValueError, TypeError, OSError, KeyError, AttributeError) as e:
            msg = str(e)
            if "safe_mode" in msg or "Lambda" in msg:
                raise SourceError(f"{path.name} holds Python code (a Lambda layer) that safe loading refuses; "
                                  "pass --trust-source (trust_source=True) only if you trust this file") from e
            first = msg.strip().splitlines()[0][:300] if msg.strip() else type(e).__name__
            raise SourceError(f"Keras cannot load {path.name}: {first}. A .keras made by another tool may hold "
                              "layer classes edgeport does not know; use its .tflite or .onnx instead") from e
        return cls(model, path=path)

    @classmethod
    def from_handle(cls, handle: ModelHandle) -> KerasRunner:
        """Wrap an in-memory ``keras.Model`` (``handle.model``), keeping the handle's I/O names."""
        return cls(handle.model, input_names=handle.input_names or None, output_names=handle.output_names or None,
                   path=handle.source_path)

    def infer(self, feeds: Feeds) -> dict[str, np.ndarray]:
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise SourceError(f"missing inputs {missing}; the model takes {[t.name for t in self.inputs]}")
        xs = [np.ascontiguousarray(feeds[t.name], dtype=t.dtype) for t in self.inputs]
        out = self.model.predict_on_batch(xs[0] if len(xs) == 1 else xs)
        if isinstance(out, dict):
            out = [out[k] for k in getattr(self.model, "output_names", list(out))]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        return {n: np.asarray(o) for n, o in zip(self.output_names, out, strict=True)}

    def _output_row_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._out_shapes)


__all__ = ["KerasRunner"]

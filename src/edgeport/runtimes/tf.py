"""TF SavedModel runner: ``tf.saved_model.load`` and its ``serving_default`` signature, outputs by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeport.errors import MissingDependencyError, SourceError
from edgeport.runtimes.base import Runner
from edgeport.sources.base import Feeds, TensorSpec

ORDER_VARIABLE = "edgeport_output_names"  # written by edgeport.exporters.saved_model
INPUT_ORDER_VARIABLE = "edgeport_input_names"


class SavedModelRunner(Runner):
    """Runs a SavedModel directory. Input/output order comes from the ``edgeport_input_names`` /
    ``edgeport_output_names`` variables when edgeport wrote the model, otherwise alphabetical."""

    name = "tf"

    def __init__(self, loaded, fn, path: Path):
        self.loaded = loaded
        self.fn = fn
        self.path = path
        specs = fn.structured_input_signature[1]
        in_order = getattr(loaded, INPUT_ORDER_VARIABLE, None)
        names_in = [v.decode() for v in in_order.numpy()] if in_order is not None else sorted(specs)
        self.inputs = tuple(
            TensorSpec(n, tuple(specs[n].shape.as_list()), specs[n].dtype.name) for n in names_in if n in specs
        )
        outs = fn.structured_outputs
        order = getattr(loaded, ORDER_VARIABLE, None)
        names = [v.decode() for v in order.numpy()] if order is not None else sorted(outs)
        self.output_names = tuple(n for n in names if n in outs)
        self.output_dtypes = {n: outs[n].dtype.name for n in self.output_names}
        self._row_shapes = {n: tuple(d or 1 for d in outs[n].shape.as_list()[1:]) for n in self.output_names}
        first = self.inputs[0].shape if self.inputs else ()
        self.fixed_batch = int(first[0]) if first and first[0] is not None else None  # e.g. from a batch-1 ONNX

    @classmethod
    def open(cls, path: Path, *, signature: str = "serving_default", threads: int | None = None, **kwargs):
        try:
            import tensorflow as tf
        except ImportError:
            raise MissingDependencyError("tensorflow-cpu", "Running SavedModel artifacts", "tf") from None
        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise SourceError(f"not a SavedModel directory (no saved_model.pb): {path}")
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            except RuntimeError:  # already initialised in this process
                pass
        loaded = tf.saved_model.load(str(path))
        if signature not in loaded.signatures:
            raise SourceError(f"SavedModel {path} has no signature '{signature}'; it has {list(loaded.signatures)}")
        return cls(loaded, loaded.signatures[signature], path)

    @property
    def input_dtypes(self) -> dict[str, str]:
        return {t.name: t.dtype for t in self.inputs}

    def infer(self, feeds: Feeds) -> dict[str, np.ndarray]:
        import tensorflow as tf

        args = {t.name: tf.constant(np.asarray(feeds[t.name], dtype=t.dtype)) for t in self.inputs}
        out = self.fn(**args)
        return {n: out[n].numpy() for n in self.output_names}

    def _output_row_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._row_shapes)

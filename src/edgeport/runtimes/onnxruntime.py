"""ONNX Runtime (CPU) runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeport.errors import MissingDependencyError, SourceError
from edgeport.runtimes.base import Runner
from edgeport.sources.base import Feeds, TensorSpec

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def _options(ort, threads: int):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


class OrtRunner(Runner):
    """Runs an ``.onnx`` file with ONNX Runtime's CPU provider. Feeds are cast to the model's input dtypes;
    FP16 outputs are returned as float32 (``output_dtypes`` keeps what the graph declares)."""

    name = "onnxruntime"

    def __init__(self, session, path: Path):
        self.session = session
        self.path = path
        self.inputs = tuple(
            TensorSpec(i.name, tuple(d if isinstance(d, int) else None for d in i.shape), _ORT_TYPES.get(i.type, i.type))
            for i in session.get_inputs()
        )
        self.output_names = tuple(o.name for o in session.get_outputs())
        self.output_dtypes = {o.name: _ORT_TYPES.get(o.type, o.type) for o in session.get_outputs()}
        self._out_shapes = {
            o.name: tuple(d if isinstance(d, int) else 1 for d in o.shape[1:]) for o in session.get_outputs()
        }
        self.fixed_batch = None
        first = session.get_inputs()[0].shape if session.get_inputs() else []
        if first and isinstance(first[0], int):
            self.fixed_batch = int(first[0])

    @classmethod
    def open(cls, path: Path, *, threads: int = 2, **kwargs) -> OrtRunner:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "Running ONNX artifacts", "onnx") from None
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"ONNX file not found: {path}")
        try:
            session = ort.InferenceSession(str(path), sess_options=_options(ort, threads),
                                           providers=["CPUExecutionProvider"])
        except Exception as e:
            raise SourceError(f"ONNX Runtime cannot load {path.name}: {str(e).splitlines()[0][:300]}") from e
        return cls(session, path)

    @classmethod
    def from_handle(cls, handle, *, threads: int = 2) -> OrtRunner:
        """Run an ONNX source's in-memory graph (``handle.model``, a ModelProto with its weights loaded)."""
        import onnxruntime as ort

        session = ort.InferenceSession(handle.model.SerializeToString(), sess_options=_options(ort, threads),
                                       providers=["CPUExecutionProvider"])
        return cls(session, handle.source_path)

    @property
    def input_dtypes(self) -> dict[str, str]:
        return {t.name: t.dtype for t in self.inputs}

    def infer(self, feeds: Feeds) -> dict[str, np.ndarray]:
        ordered = {t.name: np.ascontiguousarray(feeds[t.name], dtype=t.dtype) for t in self.inputs}
        outs = self.session.run(list(self.output_names), ordered)
        return {n: (o.astype(np.float32) if o.dtype == np.float16 else o) for n, o in zip(self.output_names, outs, strict=True)}

    def _output_row_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._out_shapes)

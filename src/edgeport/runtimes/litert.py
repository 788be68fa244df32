"""LiteRT runner: the standalone ``ai_edge_litert`` interpreter (no Flex delegate), through a signature so
that outputs map by name.

Batch: a model whose input batch is dynamic (-1) takes any number of rows. A fixed-batch model is probed
once at load: it is resized to another batch and its outputs compared with fixed-size runs; if that
agrees, any batch works, otherwise ``fixed_batch`` is set and ``Runner.run`` feeds N rows in fixed-size
chunks (padding the last). litert-torch models keep their traced output shape after a resize, so they
are fed in chunks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgeport.errors import MissingDependencyError, SourceError
from edgeport.runtimes.base import Runner
from edgeport.sources.base import Feeds, TensorSpec

log = logging.getLogger(__name__)


class LiteRTRunner(Runner):
    """Runs a ``.tflite`` file. ``input_dtypes`` / ``output_dtypes`` report the artifact's I/O types (float
    I/O is checked on every quantized artifact); quantized I/O is (de)quantized with the tensor's scale."""

    name = "litert"

    def __init__(self, path: Path, *, threads: int = 1, signature: str | None = None, probe_resize: bool = True):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self._threads = threads
        self._make = lambda: Interpreter(model_path=str(self.path), num_threads=threads)
        try:
            self.interpreter = self._make()
        except Exception as e:
            raise SourceError(f"ai-edge-litert cannot load {self.path.name}: {str(e).splitlines()[0][:300]}") from e
        sigs = self.interpreter.get_signature_list()
        self.signature = signature or (next(iter(sigs)) if sigs else None)
        if self.signature is None:
            self._init_without_signature()
        else:
            self._init_signature()
        self.fixed_batch = None
        self.resizable = True
        batch_dims = [t.shape[0] for t in self.inputs if t.shape]
        self._traced_batch = next((b for b in batch_dims if b is not None), None)
        if self._traced_batch is not None:
            self.resizable = probe_resize and self._probe_resize()
            if not self.resizable:
                self.fixed_batch = int(self._traced_batch)

    # ------------------------------------------------------------------ setup

    def _init_signature(self) -> None:
        self._sig_runner = None
        runner = self.interpreter.get_signature_runner(self.signature)
        in_details = runner.get_input_details()
        out_details = runner.get_output_details()
        # signature keys are alphabetical; the subgraph keeps the model's order: order by tensor position
        order_in = {d["index"]: k for k, d in enumerate(self.interpreter.get_input_details())}
        order_out = {d["index"]: k for k, d in enumerate(self.interpreter.get_output_details())}
        ins = sorted(in_details.items(), key=lambda kv: order_in.get(kv[1]["index"], 1 << 30))
        outs = sorted(out_details.items(), key=lambda kv: order_out.get(kv[1]["index"], 1 << 30))
        self._in = {k: d for k, d in ins}
        self._out = {k: d for k, d in outs}
        self.inputs = tuple(_spec(k, d) for k, d in ins)
        self.output_names = tuple(k for k, _ in outs)

    def _init_without_signature(self) -> None:
        ins = self.interpreter.get_input_details()
        outs = self.interpreter.get_output_details()
        self._in = {d["name"]: d for d in ins}
        self._out = {d["name"]: d for d in outs}
        self.inputs = tuple(_spec(d["name"], d) for d in ins)
        self.output_names = tuple(d["name"] for d in outs)

    @classmethod
    def open(cls, path: Path, *, threads: int = 1, signature: str | None = None, **kwargs) -> LiteRTRunner:
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError:
            raise MissingDependencyError("ai-edge-litert", "Running TFLite artifacts", "litert") from None
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"TFLite file not found: {path}")
        return cls(path, threads=threads, signature=signature, probe_resize=kwargs.get("probe_resize", True))

    # ------------------------------------------------------------------ dtypes

    @property
    def input_dtypes(self) -> dict[str, str]:
        return {k: np.dtype(d["dtype"]).name for k, d in self._in.items()}

    @property
    def output_dtypes(self) -> dict[str, str]:
        return {k: np.dtype(d["dtype"]).name for k, d in self._out.items()}

    # ------------------------------------------------------------------ inference

    def infer(self, feeds: Feeds) -> dict[str, np.ndarray]:
        rows = int(next(iter(feeds.values())).shape[0])
        if self.fixed_batch and rows != self.fixed_batch:
            raise ValueError(f"this TFLite model takes batches of {self.fixed_batch} rows, got {rows}")
        if self.signature is not None:
            return self._infer_signature(feeds)
        return self._infer_plain(feeds)

    def _infer_signature(self, feeds: Feeds) -> dict[str, np.ndarray]:
        # SignatureRunner resizes the inputs to the given arrays and re-allocates on every call
        if self._sig_runner is None:
            self._sig_runner = self.interpreter.get_signature_runner(self.signature)
        args = {k: _to_input(feeds[k], d) for k, d in self._in.items()}
        out = self._sig_runner(**args)
        return {k: _from_output(out[k], self._out[k]) for k in self.output_names}

    def _infer_plain(self, feeds: Feeds) -> dict[str, np.ndarray]:
        it = self.interpreter
        rows = int(next(iter(feeds.values())).shape[0])
        if self.fixed_batch is None:
            for d in self._in.values():
                if int(d["shape"][0]) != rows:
                    it.resize_tensor_input(d["index"], [rows, *list(d["shape"][1:])], strict=False)
            it.allocate_tensors()
            self._in = {d["name"]: d for d in it.get_input_details()}
        for k, d in self._in.items():
            it.set_tensor(d["index"], _to_input(feeds[k], d))
        it.invoke()
        return {k: _from_output(it.get_tensor(self._out[k]["index"]), self._out[k]) for k in self.output_names}

    def run_resized(self, feeds: Feeds, batch: int, *, strict: bool = False) -> dict[str, np.ndarray]:
        """Feed the rows ``batch`` at a time the way a LiteRT user does: ``resize_tensor_input`` (non-strict by
        default, the LiteRT default), ``allocate_tensors``, ``invoke`` on a fresh interpreter; the last chunk is
        resized to what is left. Outputs are concatenated exactly as the interpreter returns them, so a model
        that ignores the resize shows up as a wrong row count. ``strict=True`` raises on a fixed-batch model."""
        it = self._make()
        n = int(next(iter(feeds.values())).shape[0])
        outs: dict[str, list[np.ndarray]] = {k: [] for k in self.output_names}
        size = None
        for start in range(0, n, batch):
            chunk = {k: v[start : start + batch] for k, v in feeds.items()}
            m = int(next(iter(chunk.values())).shape[0])
            if m != size:
                for k, d in self._in.items():
                    it.resize_tensor_input(d["index"], [m, *[int(x) for x in d["shape"][1:]]], strict=strict)
                it.allocate_tensors()
                size = m
            for k, d in self._in.items():
                it.set_tensor(d["index"], _to_input(chunk[k], d))
            it.invoke()
            for k in self.output_names:
                outs[k].append(_from_output(it.get_tensor(self._out[k]["index"]), self._out[k]))
        return {k: np.concatenate(v, axis=0) for k, v in outs.items()}

    def _probe_resize(self) -> bool:
        """Resize to another batch and check the outputs against fixed-size runs of the same rows."""
        b = int(self._traced_batch)
        probe = b + 3
        rng = np.random.default_rng(0)
        feeds = {t.name: rng.normal(size=(probe, *[d or 1 for d in t.shape[1:]])).astype(_np(t.dtype)) for t in self.inputs}
        self.fixed_batch = b
        try:
            ref = {}
            for s in range(0, probe, b):
                chunk = {k: v[s : s + b] for k, v in feeds.items()}
                m = int(next(iter(chunk.values())).shape[0])
                if m < b:
                    chunk = {k: np.concatenate([v, np.repeat(v[-1:], b - m, 0)]) for k, v in chunk.items()}
                got = self.infer(chunk)
                for k, v in got.items():
                    ref.setdefault(k, []).append(v[:m])
            ref = {k: np.concatenate(v) for k, v in ref.items()}
            self.fixed_batch = None
            got = self.infer(feeds)
            ok = all(got[k].shape == ref[k].shape and np.allclose(got[k], ref[k], rtol=1e-4, atol=1e-5) for k in ref)
        except Exception as e:  # noqa: BLE001 - a model that refuses resizing is a fixed-batch model
            log.debug("resize probe failed: %s", e)
            ok = False
        # start from a clean interpreter at the traced shape either way
        self.interpreter = self._make()
        if self.signature is not None:
            self._init_signature()
        else:
            self._init_without_signature()
        self.fixed_batch = None if ok else b
        log.debug("%s: batch %s", self.path.name, "resizable" if ok else f"fixed at {b}")
        return ok

    def _output_row_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(int(x) for x in d["shape"][1:]) for k, d in self._out.items()}


def _spec(name: str, d: dict) -> TensorSpec:
    sig = d.get("shape_signature", d["shape"])
    shape = tuple(None if int(x) < 0 else int(x) for x in sig)
    return TensorSpec(name, shape, np.dtype(d["dtype"]).name)


def _np(dtype: str):
    return np.dtype(dtype)


def _to_input(x: np.ndarray, d: dict) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    scale, zero = d.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        q = np.round(np.asarray(x, np.float32) / scale + zero)
        return np.clip(q, info.min, info.max).astype(dtype)
    return np.ascontiguousarray(x, dtype=dtype)


def _from_output(y: np.ndarray, d: dict) -> np.ndarray:
    scale, zero = d.get("quantization", (0.0, 0))
    if np.issubdtype(np.asarray(y).dtype, np.integer) and scale:
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    if y.dtype == np.float16:
        return y.astype(np.float32)
    return np.array(y, copy=True)

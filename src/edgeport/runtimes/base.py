"""The runner interface: one per backend, one ``infer`` each, batching and timing built in.

Validation, benchmarks and ``predict`` all run artifacts through these.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from edgeport.sources.base import Feeds, TensorSpec


class Runner(ABC):
    """Runs one artifact (or the source model). Subclasses implement ``infer`` and set the specs.

    ``fixed_batch`` is the batch size the artifact insists on (``None`` when any batch works); ``run``
    then feeds N rows in fixed-size chunks, padding the last one.
    """

    name: str = "runner"
    inputs: tuple[TensorSpec, ...] = ()
    output_names: tuple[str, ...] = ()
    fixed_batch: int | None = None
    output_dtypes: dict[str, str] = {}

    def io_dtypes(self) -> dict[str, dict[str, str]]:
        """Dtypes of the artifact's inputs and outputs as the runtime sees them (float I/O checks)."""
        inputs = getattr(self, "input_dtypes", None) or {t.name: t.dtype for t in self.inputs}
        return {"inputs": dict(inputs), "outputs": dict(self.output_dtypes)}

    @classmethod
    @abstractmethod
    def open(cls, path: Path, **kwargs) -> Runner:
        """Load an artifact from disk."""

    @abstractmethod
    def infer(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Run one batch (of ``fixed_batch`` rows when that is set); outputs by name."""

    def run(self, feeds: Feeds, batch_size: int = 256) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Run every row, ``batch_size`` at a time (or ``fixed_batch``). A chunk that raises is retried
        row by row; rows that still fail are NaN in the outputs and True in the returned mask."""
        n = _rows(feeds)
        step = self.fixed_batch or max(1, batch_size)
        outs: dict[str, list[np.ndarray]] = {}
        failed = np.zeros(n, dtype=bool)
        for start in range(0, n, step):
            chunk = {k: v[start : start + step] for k, v in feeds.items()}
            try:
                got = self._infer_rows(chunk)
            except Exception:  # noqa: BLE001 - a failing chunk is retried row by row and counted, never hidden
                got = self._infer_row_by_row(chunk, failed, start)
            for k, v in got.items():
                outs.setdefault(k, []).append(v)
        return {k: np.concatenate(v, axis=0) for k, v in outs.items()}, failed

    def _infer_rows(self, chunk: Feeds) -> dict[str, np.ndarray]:
        m = _rows(chunk)
        if self.fixed_batch and m != self.fixed_batch:
            padded = {k: _pad(v, self.fixed_batch) for k, v in chunk.items()}
            return {k: v[:m] for k, v in self.infer(padded).items()}
        return self.infer(chunk)

    def _infer_row_by_row(self, chunk: Feeds, failed: np.ndarray, offset: int) -> dict[str, np.ndarray]:
        m = _rows(chunk)
        rows: list[dict[str, np.ndarray] | None] = []
        for i in range(m):
            try:
                rows.append(self._infer_rows({k: v[i : i + 1] for k, v in chunk.items()}))
            except Exception:  # noqa: BLE001 - counted as a failed run
                failed[offset + i] = True
                rows.append(None)
        template = next((r for r in rows if r is not None), None)
        if template is None:
            shapes = self._output_row_shapes()
            return {k: np.full((m, *s), np.nan, dtype=np.float32) for k, s in shapes.items()}
        return {
            k: np.concatenate([r[k] if r is not None else np.full_like(template[k], np.nan) for r in rows])
            for k in template
        }

    def _output_row_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: (1,) for k in self.output_names}

    def latency(self, feeds: Feeds, *, repeats: int = 50, warmup: int = 5) -> dict[str, float]:
        """Wall-clock seconds per ``infer`` call on these feeds: p50, p90, mean (no padding tricks)."""
        for _ in range(warmup):
            self._infer_rows(feeds)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self._infer_rows(feeds)
            times.append(time.perf_counter() - t0)
        t = np.asarray(times)
        return {"p50_s": float(np.percentile(t, 50)), "p90_s": float(np.percentile(t, 90)), "mean_s": float(t.mean())}


def _rows(feeds: Feeds) -> int:
    return int(next(iter(feeds.values())).shape[0])


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    if a.shape[0] >= n:
        return a
    pad = np.repeat(a[-1:], n - a.shape[0], axis=0)
    return np.concatenate([a, pad], axis=0)

"""Labelled audio folders -> training chunks, with a parallel worker pool and a shuffled reservoir.

Workers (separate processes, numpy/soundfile/librosa only, never TensorFlow) decode, resample, crop
salient chunks and compute the model input; the main process keeps a shuffled in-memory reservoir of
chunks so that one file open serves ``max_chunks_per_file`` training samples.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import deque
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from edgeport.audio.dataset import AudioDataset
from edgeport.errors import DataError

log = logging.getLogger(__name__)

def split_dataset(ds: AudioDataset, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split per folder; a folder with a single file goes to training only (with a warning)."""
    if not 0.0 <= val_split < 1.0:
        raise DataError(f"--val-split must be in [0, 1), got {val_split}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for fi, name in enumerate(ds.folders):
        idx = np.flatnonzero(ds.folder_of == fi)
        idx = idx[rng.permutation(idx.size)]
        if val_split > 0 and idx.size < 2:
            log.warning("Class '%s' has only %d file: it is used for training only and has no validation "
                        "score; add more files to validate it", name, idx.size)
            train.extend(idx.tolist())
            continue
        n_val = round(idx.size * val_split) if val_split > 0 else 0
        n_val = min(max(n_val, 1 if val_split > 0 else 0), idx.size - 1)
        val.extend(idx[:n_val].tolist())
        train.extend(idx[n_val:].tolist())
    return np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(val, np.int64))


def upsample_indices(folder_of: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Repeat files of small folders (drawn at random) until each has >= ratio x the largest folder's count."""
    idx = np.arange(folder_of.size)
    if ratio <= 0 or idx.size == 0:
        return idx
    rng = np.random.default_rng(seed)
    counts = np.bincount(folder_of)
    target = math.ceil(ratio * counts.max())
    extra = []
    for fi, c in enumerate(counts):
        if 0 < c < target:
            extra.extend(rng.choice(np.flatnonzero(folder_of == fi), size=target - c, replace=True).tolist())
    return np.concatenate([idx, np.asarray(extra, np.int64)]) if extra else idx


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Balanced inverse-frequency weights n / (K * n_c) per class (classes without positives get 1)."""
    n, k = labels.shape
    pos = labels.sum(axis=0)
    w = np.ones(k, np.float32)
    nz = pos > 0
    w[nz] = n / (k * pos[nz])
    return w


def sample_weights(labels: np.ndarray, cw: np.ndarray | None) -> np.ndarray:
    """Per-sample weight: mean class weight of its positive classes; all-zero (noise) samples weigh 1."""
    if cw is None:
        return np.ones(labels.shape[0], np.float32)
    pos = labels > 0.5
    cnt = pos.sum(axis=1)
    s = (pos * cw[None, :]).sum(axis=1)
    return np.where(cnt > 0, s / np.maximum(cnt, 1), 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------- workers

@lru_cache(maxsize=4)
def _cfg(cfg_json: str):
    from edgeport.families.audio.model_config import AudioModelConfig

    return AudioModelConfig.from_dict(json.loads(cfg_json))


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def load_file_chunks(task: tuple) -> tuple[np.ndarray | None, str | None]:
    """Worker job: (path, cfg_json, n_chunks, seed or None, max_duration[, CacheSpec or None]) ->
    (model inputs (n, ...), error). With a CacheSpec the decoded signal comes from this process's
    decoded-audio cache (edgeport.audio.cache); chunks and features are always computed afresh."""
    from edgeport.audio.chunking import fit_length, salient_starts
    from edgeport.audio.io import AudioReadError
    from edgeport.families.audio.contract import features, load_audio, normalizes

    path, cfg_json, n_chunks, seed, max_duration = task[:5]
    cache = task[5] if len(task) > 5 else None
    cfg = _cfg(cfg_json)
    csum = None
    try:
        if cache is not None:
            from edgeport.audio.cache import process_cache

            x, csum = process_cache(cache).load_with_energy(path, cfg.sample_rate, max_duration=max_duration,
                                                            normalize=normalizes(cfg))
        else:
            x = load_audio(path, cfg, max_duration=max_duration)
    except AudioReadError as e:
        return None, str(e)
    rng = np.random.default_rng(seed) if seed is not None else None
    n = cfg.chunk_samples
    starts = salient_starts(x, n, n_chunks, rng=rng, cumsum=csum)
    # the chunks as views of the signal (contract.features copies what it reads): no per-file chunk copy
    chunks = [fit_length(x, n)] if starts is None else [x[s:s + n] for s in starts]
    return np.stack([features(c, cfg) for c in chunks]).astype(np.float32, copy=False), None


def make_executor(num_workers: int):
    """Process pool (spawn context: safe with TensorFlow in the parent), or None for sequential loading."""
    if num_workers <= 0:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=num_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker)


def cache_spec(cache_dir: str | None, memory_mb: float, num_workers: int):
    """The decoded-audio cache of a run: ``memory_mb`` shared out over the processes that decode (each keeps
    its own memory table), the folder shared by all; None when both are off."""
    from edgeport.audio.cache import CacheSpec

    if not cache_dir and memory_mb <= 0:
        return None
    return CacheSpec(str(cache_dir) if cache_dir else None, float(memory_mb) / max(1, num_workers))


def default_num_workers() -> int:
    return min(8, os.cpu_count() or 1)


class ChunkStream:
    """Endless shuffled training chunks: files (reshuffled each pass) -> workers -> reservoir -> batches.

    Results are consumed in submission order and every random choice is seeded, so a run is the same
    with 0, 1 or N workers.
    """

    def __init__(self, files: list[str], labels: np.ndarray, cfg_json: str, *, executor=None, seed: int = 42,
                 max_chunks_per_file: int = 3, max_duration: float | None = 60.0, reservoir_size: int = 512,
                 prefetch: int | None = None, cache=None):
        if not files:
            raise DataError("No training files left after the validation split")
        self.files, self.labels, self.cfg_json = list(files), labels, cfg_json
        self.executor = executor
        self.rng = np.random.default_rng(seed)            # reservoir draws
        self.order_rng = np.random.default_rng(seed + 1)  # file order: separate, prefetch depth must not matter
        self.seed = seed
        self.k = max(1, int(max_chunks_per_file))
        self.max_duration = max_duration
        self.cache = cache                                # CacheSpec or None (decode every time)
        self.reservoir_size = max(1, int(reservoir_size))
        self.prefetch = prefetch or (4 * getattr(executor, "_max_workers", 1) if executor else 1)
        self.failed: dict[str, str] = {}
        self._order: deque[int] = deque()
        self._pending: deque = deque()
        self._pass = 0
        self._tasks = 0
        self._res_x: list[np.ndarray] = []
        self._res_y: list[np.ndarray] = []
        self.files_opened = 0

    def _next_index(self) -> int:
        while not self._order:
            self._pass += 1
            alive = [i for i in range(len(self.files)) if self.files[i] not in self.failed]
            if not alive:
                raise DataError(f"None of the {len(self.files)} training files could be decoded")
            self._order.extend(self.order_rng.permutation(alive).tolist())
        return self._order.popleft()

    def _submit(self) -> None:
        i = self._next_index()
        self._tasks += 1
        task = (self.files[i], self.cfg_json, self.k, self.seed * 1_000_003 + self._tasks, self.max_duration,
                self.cache)
        fut = self.executor.submit(load_file_chunks, task) if self.executor else None
        self._pending.append((i, fut, task))

    def _add_one_file(self) -> None:
        while len(self._pending) < self.prefetch:
            self._submit()
        i, fut, task = self._pending.popleft()
        x, err = fut.result() if fut is not None else load_file_chunks(task)
        self.files_opened += 1
        if err is not None:
            if self.files[i] not in self.failed:
                log.warning("Skipping unreadable file %s", err)
            self.failed[self.files[i]] = err
            return
        for c in x:
            self._res_x.append(c)
            self._res_y.append(self.labels[i])

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """One random chunk from the reservoir (refilled to ``reservoir_size`` first)."""
        while len(self._res_x) < self.reservoir_size:
            before = len(self._res_x)
            self._add_one_file()
            if len(self._res_x) == before and len(self.failed) >= len(self.files):
                raise DataError(f"None of the {len(self.files)} training files could be decoded")
            if len(self._res_x) >= self.reservoir_size or (not self._pending and not self._order and self._res_x):
                break
        j = int(self.rng.integers(len(self._res_x)))
        self._res_x[j], self._res_x[-1] = self._res_x[-1], self._res_x[j]
        self._res_y[j], self._res_y[-1] = self._res_y[-1], self._res_y[j]
        return self._res_x.pop(), self._res_y.pop()

    def batches(self, batch_size: int, n_batches: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for _ in range(n_batches):
            xs, ys = zip(*(self.take() for _ in range(batch_size)), strict=True)
            yield np.stack(xs), np.stack(ys)


def load_fixed(files: list[str], labels: np.ndarray, cfg_json: str, *, executor=None, chunks_per_file: int = 1,
               max_duration: float | None = 60.0, desc: str = "validation data",
               cache=None) -> tuple[np.ndarray, np.ndarray, list]:
    """Deterministic salient chunks of each file (no jitter) for validation; unreadable files are skipped."""
    from tqdm.auto import tqdm

    tasks = [(f, cfg_json, chunks_per_file, None, max_duration, cache) for f in files]
    results = executor.map(load_file_chunks, tasks, chunksize=4) if executor else map(load_file_chunks, tasks)
    xs, ys, bad = [], [], []
    for (f, y), (x, err) in tqdm(zip(zip(files, labels, strict=True), results, strict=False), total=len(files),
                                 desc=desc, leave=False, disable=len(files) < 50):
        if err is not None:
            bad.append((f, err))
            continue
        xs.append(x)
        ys.append(np.repeat(y[None, :], x.shape[0], axis=0))
    if not xs:
        return np.zeros((0,)), np.zeros((0, labels.shape[1]), np.float32), bad
    return np.concatenate(xs), np.concatenate(ys), bad


def prefetched(iterable, depth: int = 2):
    """Yield ``iterable``'s items while a background thread prepares the next ``depth`` ones, so that
    loading overlaps the training step (numpy, soundfile and TensorFlow release the GIL). The order is
    the iterable's own, so seeded randomness is unchanged; an error in the thread is raised here."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill():
        try:
            for item in iterable:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((done, e))

    t = threading.Thread(target=fill, name="edgeport-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item, err = q.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        t.join()

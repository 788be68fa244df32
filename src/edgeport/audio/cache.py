"""Decoded-audio cache: each file is decoded and resampled once per sample rate, then reused.

An entry is the mono float32 signal that ``edgeport.audio.io.load`` returns, keyed by the file's absolute
path, size and modification time and by every parameter of the decode (sample rate, ``max_duration``,
normalisation, the resampler and its version). Entries are kept

- in memory, in a least-recently-used table of at most ``memory_mb`` per process (with the signal's running
  energy for the salient-chunk search, ``load_with_energy``), and
- on disk under ``<cache_dir>/decoded-v<FORMAT>/`` when a cache folder is given: one file per entry, written
  atomically (``fileio.atomic_write_bytes``), so every trial and worker sharing the folder reuses them.

A disk entry carries a CRC32 of its samples; a truncated or corrupt entry is deleted and the file decoded
again. A changed source file (size or mtime) has another key, so its old entry is never read. A cache folder
written in another format (``decoded-v<other>``) is ignored with a warning. Chunking, augmentation and
spectrograms are not cached: they stay random per epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Bump when an entry's layout or the decode it stores changes: older folders are then ignored.
FORMAT = 1
_MAGIC = b"EPAUDIO1"
_STAMP = "edgeport-decoded-audio.json"


@dataclass(frozen=True)
class CacheSpec:
    """How a process caches decoded audio (picklable: sent to data-loading workers)."""

    cache_dir: str | None = None
    memory_mb: float = 1024.0


@dataclass
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    invalidated: int = 0
    disk_writes: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class DecodedAudioCache:
    """Memory LRU in front of an optional on-disk folder; ``load()`` has ``io.load``'s signature and output."""

    def __init__(self, spec: CacheSpec):
        self.spec = spec
        self.memory_budget = int(max(0.0, spec.memory_mb) * 1024 * 1024)
        self._mem: OrderedDict[str, np.ndarray] = OrderedDict()
        self._mem_bytes = 0
        self._energy: dict[str, np.ndarray] = {}   # key -> energy_cumsum of a signal held in _mem
        self._last: str | None = None
        self.stats = CacheStats()
        self.folder = _prepare_folder(Path(spec.cache_dir)) if spec.cache_dir else None

    # ------------------------------------------------------------------ keys
    @staticmethod
    def key(path: Path | str, sample_rate: int, *, max_duration: float | None, normalize: bool) -> str:
        from edgeport.audio.io import resampler_id

        p = os.path.abspath(path)
        st = os.stat(p)
        ident = [p, st.st_size, st.st_mtime_ns, int(sample_rate), max_duration, bool(normalize), resampler_id()]
        return hashlib.sha1(json.dumps(ident).encode()).hexdigest()

    # ------------------------------------------------------------------ load
    def load(self, path: Path | str, sample_rate: int, *, max_duration: float | None = None,
             normalize: bool = True) -> np.ndarray:
        from edgeport.audio.io import AudioReadError, load

        try:
            k = self.key(path, sample_rate, max_duration=max_duration, normalize=normalize)
        except OSError as e:
            raise AudioReadError(f"{path}: {e}") from e
        x = self._mem.get(k)
        if x is not None:
            self._mem.move_to_end(k)
            self.stats.memory_hits += 1
            self._last = k
            return x
        x = self._read_disk(k) if self.folder is not None else None
        if x is not None:
            self.stats.disk_hits += 1
        else:
            self.stats.misses += 1
            x = load(path, sample_rate, max_duration=max_duration, normalize=normalize)
            if self.folder is not None:
                self._write_disk(k, x)
        x.setflags(write=False)  # shared by every caller: nobody may change it in place
        self._remember(k, x)
        self._last = k
        return x

    def load_with_energy(self, path: Path | str, sample_rate: int, *,
                         max_duration: float | None = None, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``load()`` and the signal's ``energy_cumsum`` (salient-chunk search), which is kept in memory
        beside the signal (not on disk: it is cheap to derive once and twice the signal's size)."""
        from edgeport.audio.chunking import energy_cumsum

        x = self.load(path, sample_rate, max_duration=max_duration, normalize=normalize)
        k = self._last
        c = self._energy.get(k)
        if c is None:
            c = energy_cumsum(x)
            c.setflags(write=False)
            if k in self._mem and self._mem_bytes + c.nbytes <= self.memory_budget:
                self._energy[k] = c
                self._mem_bytes += c.nbytes
        return x, c

    def _remember(self, k: str, x: np.ndarray) -> None:
        if x.nbytes > self.memory_budget:
            return
        self._mem[k] = x
        self._mem_bytes += x.nbytes
        while self._mem_bytes > self.memory_budget:
            old_key, old = self._mem.popitem(last=False)
            self._mem_bytes -= old.nbytes
            e = self._energy.pop(old_key, None)
            if e is not None:
                self._mem_bytes -= e.nbytes

    # ------------------------------------------------------------------ disk
    def entry_path(self, k: str) -> Path:
        return self.folder / k[:2] / f"{k}.pcm"

    def _read_disk(self, k: str) -> np.ndarray | None:
        p = self.entry_path(k)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("Decoded-audio cache entry %s unreadable (%s): decoding again", p, e)
            return None
        x = _unpack(raw)
        if x is None:
            self.stats.invalidated += 1
            log.warning("Decoded-audio cache entry %s is corrupt: removed, decoding the file again", p)
            p.unlink(missing_ok=True)
        return x

    def _write_disk(self, k: str, x: np.ndarray) -> None:
        from edgeport.fileio import atomic_write_bytes

        p = self.entry_path(k)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(p, _pack(x))
            self.stats.disk_writes += 1
        except OSError as e:  # a full or read-only cache folder must not stop training
            log.warning("Could not write decoded-audio cache entry %s: %s", p, e)


def _pack(x: np.ndarray) -> bytes:
    data = np.ascontiguousarray(x, dtype="<f4").tobytes()
    header = json.dumps({"n": int(x.size), "crc32": zlib.crc32(data)}).encode()
    return _MAGIC + len(header).to_bytes(4, "little") + header + data


def _unpack(raw: bytes) -> np.ndarray | None:
    """The samples of a packed entry, or None if it is truncated or corrupt."""
    try:
        if not raw.startswith(_MAGIC):
            return None
        n_head = int.from_bytes(raw[8:12], "little")
        head = json.loads(raw[12:12 + n_head])
        data = memoryview(raw)[12 + n_head:]  # a view: the samples are not copied before the check
        if len(data) != 4 * int(head["n"]) or zlib.crc32(data) != int(head["crc32"]):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return np.frombuffer(data, dtype="<f4").astype(np.float32, copy=False)  # read-only, over ``raw``


def _prepare_folder(root: Path) -> Path | None:
    """``root/decoded-v<FORMAT>``, created and stamped; other formats' folders are reported and ignored."""
    from edgeport import __version__
    from edgeport.fileio import atomic_write_json

    folder = root / f"decoded-v{FORMAT}"
    for other in sorted(root.glob("decoded-v*")) if root.is_dir() else []:
        if other.name != folder.name:
            log.warning("Ignoring %s: a decoded-audio cache of another format (this edgeport writes %s); "
                        "delete it to free the space", other, folder.name)
    stamp = folder / _STAMP
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if stamp.is_file():
            try:
                fmt = json.loads(stamp.read_text()).get("format")
            except (OSError, ValueError):
                fmt = None
            if fmt != FORMAT:
                log.warning("Ignoring the decoded-audio cache in %s: its stamp says format %s, this edgeport "
                            "reads format %d; delete the folder to rebuild it", folder, fmt, FORMAT)
                return None
        else:
            atomic_write_json(stamp, {"format": FORMAT, "written_by": f"edgeport {__version__}"})
    except OSError as e:
        log.warning("Decoded-audio cache folder %s unusable (%s): caching in memory only", folder, e)
        return None
    return folder


_PROCESS_CACHES: dict[CacheSpec, DecodedAudioCache] = {}


def process_cache(spec: CacheSpec) -> DecodedAudioCache:
    """The one cache of this process for ``spec`` (kept across epochs, trials and calls)."""
    c = _PROCESS_CACHES.get(spec)
    if c is None:
        c = _PROCESS_CACHES[spec] = DecodedAudioCache(spec)
    return c


def cache_size(cache_dir: Path | str) -> tuple[int, int]:
    """(entries, bytes) of the current-format folder under ``cache_dir``."""
    folder = Path(cache_dir) / f"decoded-v{FORMAT}"
    files = list(folder.rglob("*.pcm")) if folder.is_dir() else []
    return len(files), sum(f.stat().st_size for f in files)

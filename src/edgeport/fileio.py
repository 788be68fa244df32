"""Atomic file helpers: nothing edgeport writes is ever seen half-written under its final name.

``OutputPlan`` is the one write rule of every command (docs/reliability.md): every output is named before
work starts, an existing one is replaced only with ``--force``, nothing is written through a symlink,
outputs are staged in a hidden folder beside their final place and moved into place together at the end.
``strict_json`` is the one JSON encoder: NaN and infinities become ``null`` with the reason beside them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """The one atomic write: yields a temporary path beside ``path`` (ending in ``suffix``, for writers that
    need an extension) to write; when the block ends it is renamed to ``path``, so readers see the old or the
    new file, never half of one. On an error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, strict_json(data))


def _nonfinite_reason(v: float) -> str:
    return "NaN: undefined for this data" if math.isnan(v) else f"{'+' if v > 0 else '-'}infinity"


def _strict(o: Any) -> tuple[Any, str | None]:
    """(JSON-safe value, reason if it held a non-finite number)."""
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        o = o.item()
    elif isinstance(o, np.ndarray):
        o = o.tolist()
    elif isinstance(o, Path):
        return str(o), None
    if isinstance(o, float):
        return (o, None) if math.isfinite(o) else (None, _nonfinite_reason(o))
    if isinstance(o, dict):
        out: dict = {}
        notes: dict = {}
        for k, v in o.items():
            out[k], why = _strict(v)
            if why is not None:
                notes[f"{k}_null_reason"] = why
        for k, why in notes.items():
            if k not in o:
                out[k] = why
        return out, None
    if isinstance(o, (list, tuple)):
        items = [_strict(v) for v in o]
        reasons = sorted({why for _, why in items if why is not None})
        return [v for v, _ in items], ("null entries: " + "; ".join(reasons)) if reasons else None
    return o, None


def strict_json(data: Any) -> str:
    """JSON text any strict parser accepts (RFC 8259): NaN and infinities are ``null``, and the dict holding
    them gets ``<key>_null_reason`` beside them ("NaN: undefined for this data", "+infinity", ...)."""
    value, why = _strict(data)
    if why is not None and isinstance(value, dict):
        value["null_reason"] = why
    return json.dumps(value, indent=2, sort_keys=False, allow_nan=False, default=_json_default) + "\n"


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def remove_path(path: Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def move_into_place(src: Path, dst: Path) -> None:
    """Replace ``dst`` (file or directory) with ``src``; same filesystem, so the final step is a rename."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        if src.is_dir() or dst.is_dir():
            old = dst.with_name(f".{dst.name}.old")
            remove_path(old)
            os.replace(dst, old)
            os.replace(src, dst)
            remove_path(old)
            return
    os.replace(src, dst)


def path_size(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------- the write rule

#: hidden folder, in every folder edgeport writes to, that holds the staged outputs of a running command
STAGING = ".edgeport-tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(folder: Path) -> None:
    """Remove what killed runs (SIGKILL, power loss) left in ``folder/.edgeport-tmp`` (their pid is gone)."""
    area = Path(folder) / STAGING
    if not area.is_dir() or area.is_symlink():
        return
    for d in area.iterdir():
        pid = d.name.split("-", 1)[0]
        if not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid() and d.name not in _LIVE:
            remove_path(d)
    with contextlib.suppress(OSError):
        area.rmdir()


_LIVE: set[str] = set()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the staged set is moved into place (the moves finish together)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {s: signal.signal(s, lambda n, _f: got.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if got:
            signal.raise_signal(got[0])


class OutputPlan:
    """Every output of one command, known before work; staged, then moved into place together.

    ``add(final)`` names an output and returns the path to write it to (inside a hidden staging folder in
    ``final``'s folder, same filesystem); ``check()`` refuses, before any work, an existing output without
    ``force``, a symlink in an output's place without ``force`` (with it the link itself is replaced, never
    its target) and a folder that cannot be written; ``commit()`` moves what is staged into place (a
    command may commit several times, e.g. training after each epoch) and, with ``prune``, removes the
    planned outputs this run did not write (an earlier artifact whose new version failed); ``abort()`` (or
    leaving the ``with`` block) removes the staging and leaves every output not yet committed as it was.
    """

    def __init__(self, *, force: bool = False, what: str = "earlier outputs",
                 hint: str = "pass --force to replace them or choose another output"):
        self.force = force
        self.what = what
        self.hint = hint
        self._outputs: list[Path] = []            # final paths, in the order they were planned
        self._areas: dict[Path, Path] = {}        # folder -> its staging folder of this run (made on first use)
        self._created: list[Path] = []            # output folders this run created (removed again if empty)

    # -------------------------------------------------------------- planning
    def add(self, final: Path | str) -> None:
        final = Path(os.path.abspath(final))
        if final not in self._outputs:
            self._outputs.append(final)

    def staged(self, final: Path | str) -> Path:
        """Where to write the planned output ``final`` (its folder's staging area is made on first use)."""
        final = Path(os.path.abspath(final))
        if final not in self._outputs:
            raise KeyError(f"{final} is not a planned output")
        return self._area(final.parent) / final.name

    @property
    def finals(self) -> list[Path]:
        return list(self._outputs)

    def existing(self, extra: Iterable[Path] = ()) -> list[Path]:
        """Planned outputs (and ``extra`` paths) already present, symlinks included."""
        paths = [*self._outputs, *(Path(os.path.abspath(p)) for p in extra)]
        return [p for p in dict.fromkeys(paths) if p.exists() or p.is_symlink()]

    def check(self, extra_existing: Iterable[Path] = ()) -> None:
        """Refuse before work: an output folder that is a file or cannot be written, existing outputs
        (``extra_existing``: earlier files this command would make stale) without ``force``."""
        from edgeport.errors import ConfigError

        for folder in dict.fromkeys(p.parent for p in self._outputs):
            probe = folder
            while not probe.exists() and probe.parent != probe:
                probe = probe.parent
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{folder} is a file, not a folder: choose another output folder")
            if not probe.is_dir():
                raise ConfigError(f"cannot create {folder}: {probe} is a file")
            if not os.access(probe, os.W_OK | os.X_OK):
                raise ConfigError(f"{probe} is not writable: choose an output folder you can write to")
        there = self.existing(extra_existing)
        if there and not self.force:
            links = [p for p in there if p.is_symlink()]
            shown = ", ".join(p.name for p in there[:4]) + (", ..." if len(there) > 4 else "")
            what = "symlinks (never followed)" if links and len(links) == len(there) else self.what
            raise ConfigError(f"{there[0].parent} holds {what} ({shown}); {self.hint}")

    def _area(self, folder: Path) -> Path:
        from edgeport.errors import ConfigError

        if folder in self._areas:
            return self._areas[folder]
        try:
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            self._created.extend(missing)
            clean_stale_staging(folder)
            root = folder / STAGING
            if root.is_symlink():
                root.unlink()
            root.mkdir(exist_ok=True)
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            (root / name).mkdir()
        except OSError as e:
            raise ConfigError(f"cannot write to {folder} ({e.strerror or e}): choose an output folder you can "
                              "write to") from None
        _LIVE.add(name)
        self._areas[folder] = root / name
        return root / name

    def work_dir(self, folder: Path | str, prefix: str) -> Path:
        """A scratch folder inside ``folder``'s staging area (removed with it; cleaned on the next run if
        the process is killed)."""
        area = self._area(Path(os.path.abspath(folder)))
        return Path(tempfile.mkdtemp(prefix=prefix, dir=area))

    # -------------------------------------------------------------- finishing
    def commit(self, *, prune: bool = False) -> list[Path]:
        """Move every staged output into place (renames; SIGINT/SIGTERM held until done); with ``prune``
        remove the planned outputs that were not staged. Returns the outputs moved; the staging area stays
        usable for a later commit."""
        moved = []
        with _signals_deferred():
            for final in self._outputs:
                src = self.staged(final)
                if src.exists() or src.is_symlink():
                    if final.is_symlink():
                        final.unlink()  # replace the link itself, never its target
                    move_into_place(src, final)
                    moved.append(final)
                elif prune and (final.exists() or final.is_symlink()):
                    remove_path(final)
        return moved

    def abort(self) -> None:
        """Remove this run's staging (and the output folders it created, when still empty)."""
        for area in self._areas.values():
            shutil.rmtree(area, ignore_errors=True)
            _LIVE.discard(area.name)
            with contextlib.suppress(OSError):
                area.parent.rmdir()
        self._areas.clear()
        for folder in self._created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._created.clear()

    def close(self) -> None:
        self.abort()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


def read_json(path: Path | str, what: str) -> dict:
    """A JSON object edgeport wrote (strict: NaN / Infinity refused); one clear line otherwise."""
    from edgeport.errors import SourceError

    def refuse(name: str):
        raise ValueError(f"non-standard constant {name}")

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=refuse)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SourceError(f"{what} {path} is not readable JSON ({str(e).splitlines()[0][:200]}): rerun the "
                          "command that wrote it") from None
    if not isinstance(data, dict):
        raise SourceError(f"{what} {path} holds {type(data).__name__}, not an object: rerun the command that wrote it")
    return data

"""labels.txt: one species per line, tab-separated ``code<TAB>scientific name<TAB>common name`` (no header)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from edgeport.errors import ConfigError, DataError
from edgeport.fileio import atomic_write_bytes

LABELS_FILENAME = "labels.txt"


class Label(NamedTuple):
    code: str
    scientific: str
    common: str


def read_labels(path: str | os.PathLike) -> list[Label]:
    """Parse a labels.txt; blank lines are skipped, anything else must have exactly three fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"Labels file {path} does not exist: pass the labels.txt that belongs to the model") from None
    except UnicodeDecodeError as e:
        raise DataError(f"Labels file {path} is not UTF-8 text ({e}): save it as UTF-8") from None
    labels = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 3:
            raise DataError(
                f"{path}:{lineno}: expected 3 tab-separated fields (code, scientific name, common name), "
                f"found {len(fields)}"
            )
        labels.append(Label(*(f.strip() for f in fields)))
    return labels


def write_labels(path: str | os.PathLike, rows: Iterable[Sequence[str]]) -> Path:
    """Write (code, scientific, common) rows atomically; refuses fields holding tabs or newlines."""
    lines = []
    for i, row in enumerate(rows):
        if len(row) != 3:
            raise ConfigError(f"Label row {i} has {len(row)} fields; each needs (code, scientific name, common name)")
        for field in row:
            if not isinstance(field, str) or any(c in field for c in "\t\r\n"):
                raise ConfigError(f"Label row {i} field {field!r} must be a string without tabs or newlines")
        lines.append("\t".join(row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
    return path

"""A strict JSON reader (RFC 8259, as JavaScript's JSON.parse): bare NaN / Infinity are an error."""

from __future__ import annotations

import json
from pathlib import Path


def _refuse(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def strict_load(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_refuse)


def strict_load_all(root: Path) -> list[Path]:
    """Parse every ``*.json`` under ``root`` strictly; returns the files parsed."""
    files = sorted(Path(root).rglob("*.json"))
    for f in files:
        strict_load(f)
    return files

"""Installed versions of the packages an artifact was made with (manifests and exporter notes)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """``{package: version}`` of those of ``packages`` that are installed."""
    out = {}
    for p in packages:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out

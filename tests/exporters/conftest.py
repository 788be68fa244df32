import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_support

from _support import artifacts

_BASE: list[Path] = []


@pytest.fixture(scope="session")
def torch_export(tmp_path_factory):
    """``torch_export(kind, fmt, **options)`` -> (handle, path, notes); each conversion runs once per process."""
    if not _BASE:
        _BASE.append(tmp_path_factory.mktemp("torch_artifacts"))
    return lambda kind, fmt, **opts: artifacts.export(_BASE[0], kind, fmt, **opts)

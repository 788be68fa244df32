"""Fixtures of the reliability suite: the session's geo checkpoint (tests/conftest.py), a small labelled
audio folder (generated, no model), and helpers that hash a folder and check the one-line rule."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests._support.shared import shared_dir


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> content hash ('link -> target' for symlinks, 'dir' for folders), hidden files too."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = f"link -> {os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def one_line(err: str) -> str:
    """The one ``edgeport ...: error`` / ``interrupted`` line of stderr; fails on a traceback or on two."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("edgeport")
             and (": error:" in ln or ": interrupted" in ln)]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="session")
def rel_audio(tmp_path_factory) -> Path:
    """3 species x 3 files + noise x 2 of 0.6 s at 16 kHz (no model is trained on it here)."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    with shared_dir(tmp_path_factory, "reliability_audio") as (root, built):
        if not built:
            generate_dataset(root, SyntheticSpec(n_species=3, files_per_class=3, noise_files=2, duration=0.6,
                                                 sample_rate=16000, difficulty=0.0), seed=4)
    return root


@pytest.fixture
def geo_src(geo_checkpoint, tmp_path) -> Path:
    """A private copy of the geo checkpoint's folder (checkpoint, labels.txt, licence) a case may spoil."""
    d = tmp_path / "src"
    shutil.copytree(geo_checkpoint.parent, d, ignore=shutil.ignore_patterns("*.lock", "*.done"))
    return d / geo_checkpoint.name


@pytest.fixture(autouse=True)
def _log_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPORT_LOG_DIR", str(tmp_path / "logs"))

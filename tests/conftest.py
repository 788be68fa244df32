"""Session-wide fixtures: one small non-trivial geo checkpoint and one export of it to every format."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

GEO_SPECIES = 64
GEO_SCALE = 0.25


@pytest.fixture(scope="session")
def geo_checkpoint(tmp_path_factory):
    """A non-trivial geo checkpoint (fit to synthetic range maps) with labels.txt and a licence beside it."""
    from edgeport.families.geo import make_geo_checkpoint

    d = tmp_path_factory.mktemp("geo_ckpt")
    path = d / "checkpoint_best.pt"
    make_geo_checkpoint(path, n_species=GEO_SPECIES, model_scale=GEO_SCALE, steps=300, seed=0)
    return path


@pytest.fixture(scope="session")
def geo_export_all(geo_checkpoint, tmp_path_factory):
    """``edgeport export --formats all`` of the geo checkpoint, run once per session."""
    from edgeport.export import ExportConfig, export_handle
    from edgeport.sources import load_source

    out = tmp_path_factory.mktemp("geo_export") / "exports"
    handle = load_source(geo_checkpoint)
    result = export_handle(handle, ExportConfig(formats=("all",), outdir=out))
    return result

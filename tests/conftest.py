"""Session-wide fixtures: one small non-trivial geo checkpoint and one export of it to every format, each
built once per test run (shared by the xdist workers under a lock)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tests._support.shared import shared_dir

GEO_SPECIES = 64
GEO_SCALE = 0.25


@pytest.fixture(scope="session")
def geo_checkpoint(tmp_path_factory):
    """A non-trivial geo checkpoint (fit to synthetic range maps) with labels.txt and a licence beside it."""
    from edgeport.families.geo import make_geo_checkpoint

    with shared_dir(tmp_path_factory, "geo_ckpt") as (d, built):
        path = d / "checkpoint_best.pt"
        if not built:
            make_geo_checkpoint(path, n_species=GEO_SPECIES, model_scale=GEO_SCALE, steps=300, seed=0)
    return path


@pytest.fixture(scope="session")
def geo_export_all(geo_checkpoint, tmp_path_factory):
    """The folder of ``edgeport export --formats all`` of the geo checkpoint, run once per test run."""
    from edgeport.export import ExportConfig, export_handle
    from edgeport.sources import load_source

    with shared_dir(tmp_path_factory, "geo_export") as (d, built):
        out = d / "exports"
        if not built:
            export_handle(load_source(geo_checkpoint), ExportConfig(formats=("all",), outdir=out))
    return out

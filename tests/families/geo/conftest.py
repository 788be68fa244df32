"""Geo fixtures: the session's small synthetic geo checkpoint (root conftest ``geo_checkpoint``), loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def geo_synthetic_model(geo_checkpoint):
    from edgeport.families.geo.checkpoint import load_checkpoint

    model, _ = load_checkpoint(geo_checkpoint)
    return model

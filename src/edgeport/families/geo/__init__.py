"""Geo reference family (seed 000): (lat, lon, week) -> species probabilities.

Light to import: the constants and input makers come from ``family`` (numpy only); the torch parts
(model, wrapper, checkpoint, synthetic fit) load on first use, so torch is needed only when they are used.
"""

from __future__ import annotations

from edgeport.families import lazy_attribute
from edgeport.families.geo import family
from edgeport.families.geo.family import *  # the constants and input makers (family.__all__)

_LAZY = {
    "GeoModel": "model",
    "HarmonicEncoding": "model",
    "FiLMResidualBlock": "model",
    "geo_sizes": "model",
    "count_parameters": "model",
    "GeoExportWrapper": "wrapper",
    "ColumnSplit": "wrapper",
    "wrap_geo": "wrapper",
    "check_geo_model": "wrapper",
    "build_from_config": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "CONFIG_KEYS": "checkpoint",
    "make_geo_checkpoint": "synthetic",
    "is_non_trivial": "synthetic",
    "SpeciesMaps": "synthetic",
    "synthetic_labels": "synthetic",
}


def __getattr__(name: str):
    return lazy_attribute(__name__, _LAZY, name)


__all__ = [*family.__all__, *_LAZY]  # noqa: PLE0604

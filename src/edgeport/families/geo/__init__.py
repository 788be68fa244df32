"""Geo reference family (seed 000): (lat, lon, week) -> species probabilities.

Light to import: the constants and input makers come from ``family`` (numpy only); the torch parts
(model, wrapper, checkpoint, synthetic fit) load on first use, so torch is needed only when they are used.
"""

from __future__ import annotations

import importlib

from edgeport.families.geo.family import (
    DEFAULT_CHECKPOINT,
    FAMILY,
    HARD_CASES,
    INPUT_NAME,
    KEEP_FLOAT,
    KEEP_FLOAT_INPUT_SIDE,
    LABELS_FILENAME,
    LICENSE_FILENAME,
    MODEL_NAME,
    N_REFERENCE,
    OUTPUT_NAME,
    Label,
    calibration_inputs,
    keep_float_scopes,
    read_labels,
    reference_inputs,
    write_labels,
)

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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "torch":
            from edgeport.errors import MissingDependencyError

            raise MissingDependencyError("torch", f"The geo family's {name}", "torch") from e
        raise
    return getattr(mod, name)


__all__ = [
    "DEFAULT_CHECKPOINT",
    "FAMILY",
    "HARD_CASES",
    "INPUT_NAME",
    "KEEP_FLOAT",
    "KEEP_FLOAT_INPUT_SIDE",
    "LABELS_FILENAME",
    "LICENSE_FILENAME",
    "MODEL_NAME",
    "N_REFERENCE",
    "OUTPUT_NAME",
    "Label",
    "calibration_inputs",
    "keep_float_scopes",
    "read_labels",
    "reference_inputs",
    "write_labels",
]
__all__ += list(_LAZY)

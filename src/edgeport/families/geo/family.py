"""What the export pipeline needs to know about the geo family: names, inputs, float-kept layers, labels."""

from __future__ import annotations

import numpy as np

from edgeport.errors import ConfigError
from edgeport.families.geo.labels import (
    LABELS_FILENAME,
    Label,
    read_labels,
    write_labels,
)

FAMILY = "geo"
MODEL_NAME = "geomodel"
DEFAULT_CHECKPOINT = "checkpoints/checkpoint_best.pt"
N_REFERENCE = 200
INPUT_NAME = "input"  # (batch, 3) float32 [lat, lon, week] of the export wrapper
OUTPUT_NAME = "probabilities"  # (batch, n_species) sigmoid probabilities
LICENSE_FILENAME = "MODEL_LICENSE.txt"

# Module path (inside GeoExportWrapper, see named_modules()) whose ops stay float in every quantized / FP16
# format: the harmonic encoding turns raw coordinates into sin/cos (quantizing them costs ~0.3-0.6 max diff,
# SPEC §2). KEEP_FLOAT_INPUT_SIDE adds the wrapper's column split, which also sees raw coordinates (it has no
# arithmetic, but a static-QDQ quantizer would put a quantize step on the graph input in front of it).
KEEP_FLOAT = ("model.encoding",)
KEEP_FLOAT_INPUT_SIDE = ("columns",) + KEEP_FLOAT

# Rows always present in the reference inputs: poles, the date line, lon 0, first and last week.
HARD_CASES = np.array(
    [
        [90.0, 0.0, 1.0],
        [-90.0, 0.0, 48.0],
        [90.0, 180.0, 48.0],
        [-90.0, -180.0, 1.0],
        [0.0, 180.0, 1.0],
        [0.0, -180.0, 48.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, 48.0],
        [45.0, 180.0, 24.0],
        [-45.0, -180.0, 25.0],
        [89.9, 179.9, 48.0],
        [-89.9, -179.9, 1.0],
    ],
    dtype=np.float32,
)

_REFERENCE_STREAM = 0
_CALIBRATION_STREAM = 1


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(stream,)))


def _uniform_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    lat = rng.uniform(-90.0, 90.0, n)
    lon = rng.uniform(-180.0, 180.0, n)
    week = rng.integers(1, 49, n).astype(np.float64)
    return np.stack([lat, lon, week], axis=1).astype(np.float32)


def reference_inputs(n: int = N_REFERENCE, seed: int = 0) -> dict[str, np.ndarray]:
    """``{"input": (n, 3) float32}``: the hard cases first, then lat U(-90,90), lon U(-180,180), week 1..48."""
    if int(n) != n or n < 1:
        raise ConfigError(f"geo reference inputs need n >= 1, got {n!r}")
    if n <= len(HARD_CASES):
        return {INPUT_NAME: HARD_CASES[: int(n)].copy()}
    rows = _uniform_rows(_rng(seed, _REFERENCE_STREAM), int(n) - len(HARD_CASES))
    return {INPUT_NAME: np.concatenate([HARD_CASES, rows]).astype(np.float32)}


def calibration_inputs(n: int = 512, seed: int = 0) -> dict[str, np.ndarray]:
    """``{"input": (n, 3) float32}`` uniform lat/lon/week for calibrated quantization (own seed stream).

    The first rows are the input-range corners (±90, ±180, weeks 1 and 48) so that min/max calibration
    always sees the full range, whatever the sample.
    """
    if int(n) != n or n < 1:
        raise ConfigError(f"geo calibration inputs need n >= 1, got {n!r}")
    corners = np.array(
        [[90.0, 180.0, 48.0], [-90.0, -180.0, 1.0], [90.0, -180.0, 1.0], [-90.0, 180.0, 48.0]], dtype=np.float32
    )[: int(n)]
    rows = _uniform_rows(_rng(seed, _CALIBRATION_STREAM), int(n) - len(corners))
    return {INPUT_NAME: np.concatenate([corners, rows]).astype(np.float32)}


def keep_float_scopes(module) -> tuple[str, ...]:
    """The KEEP_FLOAT_INPUT_SIDE paths that exist in ``module`` (a user's model may have no ``encoding``)."""
    names = {name for name, _ in module.named_modules()}
    return tuple(p for p in KEEP_FLOAT_INPUT_SIDE if p in names)


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

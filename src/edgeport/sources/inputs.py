"""Seeded random reference inputs for a model without a family: shaped from its input specs.

A source that brings no family (an ONNX file from another tool, a TFLite file, a user's module) is validated
on seeded random inputs unless the user gives ``--reference-inputs FILE.npz``. Float inputs are N(0, 1), or
U(LO, HI) with ``--input-range NAME=LO,HI``; integer inputs are uniform integers in [0, 10) (or [LO, HI]);
boolean inputs are fair coin flips. Axis 0 is the batch (any fixed size there is the model's batch, not the
rows: ``n`` rows are always made); every other dimension without a size takes ``DEFAULT_DIM``
(``--input-shape NAME=DIMS`` fixes it instead).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from edgeport.errors import ConfigError
from edgeport.sources.base import Feeds, ModelHandle, TensorSpec

log = logging.getLogger(__name__)

#: size given to a symbolic non-batch dimension (sequence length, height, ...) when nothing fixes it
DEFAULT_DIM = 16
#: integer inputs without a range: [0, INT_HIGH)
INT_HIGH = 10

Ranges = dict[str, tuple[float, float]]


def parse_input_ranges(items: Sequence[str] | None) -> Ranges:
    """``["x=0,1", "week=1,48"]`` -> ``{"x": (0.0, 1.0), "week": (1.0, 48.0)}``; one clear line otherwise."""
    out: Ranges = {}
    for item in items or ():
        try:
            name, values = item.split("=", 1)
            lo, hi = (float(v) for v in values.split(","))
        except ValueError:
            raise ConfigError(f"--input-range expects NAME=LO,HI such as x=0,1, got '{item}'") from None
        if not np.isfinite([lo, hi]).all() or not lo < hi:
            raise ConfigError(f"--input-range {item}: LO must be below HI and both finite")
        name = name.strip()
        if name in out:
            raise ConfigError(f"--input-range names '{name}' twice")
        out[name] = (lo, hi)
    return out


def row_shape(spec: TensorSpec, default_dim: int = DEFAULT_DIM) -> tuple[int, ...]:
    """The shape of one row of ``spec`` (axis 0 dropped), symbolic dimensions given ``default_dim``."""
    return tuple(default_dim if d is None else int(d) for d in spec.shape[1:])


def random_feeds(specs: Sequence[TensorSpec], n: int, seed: int, *, ranges: Ranges | None = None,
                 default_dim: int = DEFAULT_DIM) -> Feeds:
    """``n`` seeded rows per input (each input its own stream, so adding an input does not move the others)."""
    ranges = ranges or {}
    out: Feeds = {}
    for k, spec in enumerate(specs):
        rng = np.random.default_rng([int(seed), k])
        shape = (int(n), *row_shape(spec, default_dim))
        dtype = np.dtype(spec.dtype)
        lo_hi = ranges.get(spec.name)
        if dtype.kind == "b":
            a = rng.random(shape) < 0.5
        elif dtype.kind in "iu":
            lo, hi = lo_hi if lo_hi else (0, INT_HIGH - 1)
            a = rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1, size=shape)
        elif lo_hi:
            a = rng.uniform(lo_hi[0], lo_hi[1], size=shape)
        else:
            a = rng.standard_normal(shape)
        out[spec.name] = a.astype(dtype)
    return out


def check_ranges(specs: Sequence[TensorSpec], ranges: Ranges) -> None:
    """Every ``--input-range`` names an input of the model."""
    unknown = sorted(set(ranges) - {s.name for s in specs})
    if unknown:
        raise ConfigError(f"--input-range names {unknown}, which the model does not take; its inputs are "
                          f"{[s.name for s in specs]}")


def describe(specs: Sequence[TensorSpec], ranges: Ranges | None = None, default_dim: int = DEFAULT_DIM) -> dict:
    """What the random inputs are, for the manifest and validation.json."""
    ranges = ranges or {}
    out = {}
    for s in specs:
        kind = np.dtype(s.dtype).kind
        if kind == "b":
            dist = "bernoulli(0.5)"
        elif kind in "iu":
            lo, hi = ranges.get(s.name, (0, INT_HIGH - 1))
            dist = f"integers [{lo:g}, {hi:g}]"
        elif s.name in ranges:
            dist = "uniform({:g}, {:g})".format(*ranges[s.name])
        else:
            dist = "normal(0, 1)"
        out[s.name] = {"row_shape": list(row_shape(s, default_dim)), "dtype": s.dtype, "distribution": dist}
    return {"kind": "seeded random", "symbolic_dim": default_dim, "inputs": out}


def attach_random_inputs(handle: ModelHandle, ranges: Ranges | None = None, default_dim: int = DEFAULT_DIM) -> None:
    """Give a handle without family inputs seeded random reference inputs shaped from its specs."""
    ranges = dict(ranges or {})
    check_ranges(handle.inputs, ranges)
    specs = tuple(handle.inputs)
    warned: list[bool] = []

    def draw(n: int, seed: int) -> Feeds:
        if not warned:
            warned.append(True)
            log.warning("%s has no family reference inputs: validating on seeded random inputs (%s); pass "
                        "--reference-inputs FILE.npz with realistic inputs, or --input-range NAME=LO,HI", handle.name,
                        ", ".join(f"{k}: {v['distribution']}" for k, v in describe(specs, ranges,
                                                                                    default_dim)["inputs"].items()))
        return random_feeds(specs, n, seed, ranges=ranges, default_dim=default_dim)

    handle.reference_inputs = draw
    handle.notes["reference_inputs"] = describe(specs, ranges, default_dim)

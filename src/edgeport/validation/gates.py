"""``Gate``: the thresholds an artifact must meet, checked when built, and ``--gate`` overrides parsed.

Each format's default gate is data on its ``FormatSpec`` (``exporters/__init__.py``); a default may be
loosened only with a measured reason written in docs/validation.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from edgeport.errors import ConfigError


@dataclass(frozen=True)
class Gate:
    """Thresholds an artifact must meet on every output. ``None`` means "reported, not gated".

    ``max_abs_diff_tol`` marks gates whose max-abs-diff bound is the user's ``--tol``; ``float32_io``
    requires the artifact's inputs and outputs to be float32 (quantized artifacts: seed 001's rule).
    """

    max_abs_diff: float | None = None
    max_abs_diff_tol: bool = False
    min_cosine: float | None = None
    min_pearson: float | None = None
    min_centred_pearson: float | None = None
    min_top1: float | None = None
    max_failed_rows: int = 0
    float32_io: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or v is None:
                continue
            if not v >= 0:
                raise ConfigError(f"gate {f.name} must be >= 0, got {v}")
            if f.name.startswith("min_") and v > 1:
                raise ConfigError(f"gate {f.name} is a fraction in [0, 1], got {v}: no artifact can meet it")

    def with_tol(self, tol: float) -> Gate:
        return replace(self, max_abs_diff=tol) if self.max_abs_diff_tol else self

    def override(self, **values: float) -> Gate:
        known = set(METRICS)
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown gate metric(s) {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **values, max_abs_diff_tol=False if "max_abs_diff" in values else self.max_abs_diff_tol)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("max_abs_diff_tol")
        return d


#: the metric names a ``--gate FORMAT.METRIC=VALUE`` may set
METRICS = tuple(f.name for f in fields(Gate) if f.name not in ("max_abs_diff_tol", "float32_io"))

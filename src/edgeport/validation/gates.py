"""The one table of default gates (SPEC §2). A format's gate is data, not an ``if`` branch.

A default may be loosened only with a measured reason written in docs/validation.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from edgeport.errors import ConfigError


@dataclass(frozen=True)
class Gate:
    """Thresholds an artifact must meet on every output. ``None`` means "reported, not gated".

    ``max_abs_diff_tol`` marks gates whose max-abs-diff bound is the user's ``--tol``.
    """

    max_abs_diff: float | None = None
    max_abs_diff_tol: bool = False
    min_cosine: float | None = None
    min_pearson: float | None = None
    min_centred_pearson: float | None = None
    min_top1: float | None = None
    max_failed_rows: int = 0

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
        known = {f.name for f in fields(self)} - {"max_abs_diff_tol"}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown gate metric(s) {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **values, max_abs_diff_tol=False if "max_abs_diff" in values else self.max_abs_diff_tol)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("max_abs_diff_tol")
        return d


_INT8 = Gate(min_cosine=0.99, min_top1=0.98)

#: Default gate per format name (SPEC §2). ``onnx_fp16`` with ``--fp16-io`` uses ``onnx_fp16_io``.
GATES: dict[str, Gate] = {
    "onnx": Gate(max_abs_diff=1e-4, max_abs_diff_tol=True),
    "onnx_fp16": Gate(max_abs_diff=0.06),
    "onnx_fp16_io": Gate(max_abs_diff=0.05),
    "onnx_int8": _INT8,
    "onnx_int8_static": _INT8,
    "tflite": Gate(max_abs_diff=1e-4, max_abs_diff_tol=True),
    "tflite_fp16": Gate(max_abs_diff=0.06),
    "tflite_int8": _INT8,
    "tflite_int8_full": Gate(min_cosine=0.95, min_pearson=0.95, min_centred_pearson=0.9, min_top1=0.9),
    "tf": Gate(max_abs_diff=1e-4, max_abs_diff_tol=True),
}


def gate_for(
    format_name: str,
    *,
    tol: float = 1e-4,
    fp16_io: bool = False,
    overrides: dict[str, dict[str, float]] | None = None,
) -> Gate:
    """The gate in force for a format, after ``--tol`` and any ``--gate FORMAT.METRIC=VALUE``."""
    key = "onnx_fp16_io" if (format_name == "onnx_fp16" and fp16_io) else format_name
    try:
        gate = GATES[key]
    except KeyError:
        raise ConfigError(f"no gate defined for format '{format_name}'. Known: {sorted(GATES)}") from None
    gate = gate.with_tol(tol)
    if overrides and format_name in overrides:
        gate = gate.override(**overrides[format_name])
    return gate


def parse_gate_overrides(items: list[str] | None) -> dict[str, dict[str, float]]:
    """``["tflite_int8.min_cosine=0.98"]`` -> ``{"tflite_int8": {"min_cosine": 0.98}}``, every format name,
    metric name and value checked (``check_gate_overrides``)."""
    out: dict[str, dict[str, float]] = {}
    for item in items or []:
        try:
            key, value = item.split("=", 1)
            fmt, metric = key.split(".", 1)
            out.setdefault(fmt, {})[metric] = int(value) if metric == "max_failed_rows" else float(value)
        except ValueError:
            raise ConfigError(f"--gate expects FORMAT.METRIC=VALUE (e.g. onnx_int8.min_cosine=0.98), got '{item}'") from None
    check_gate_overrides(out)
    return out


def check_gate_overrides(overrides: dict[str, dict[str, float]], flag: str = "--gate") -> None:
    """Refuse, before any work, an unknown format or metric name and a value no artifact can meet."""
    from edgeport.exporters import FORMATS

    for fmt, values in overrides.items():
        if fmt not in FORMATS:
            raise ConfigError(f"{flag}: unknown format '{fmt}'; known: {', '.join(FORMATS.names())}")
        known = sorted({f.name for f in fields(Gate)} - {"max_abs_diff_tol"})
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{flag}: unknown metric(s) {unknown} for {fmt}; known: {', '.join(known)}")
        try:
            GATES[fmt].override(**values)
        except ConfigError as e:
            raise ConfigError(f"{flag} {fmt}: {e}") from None

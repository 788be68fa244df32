"""The comparator: reference outputs vs an artifact's outputs -> a result whose truth is "passed".

It makes every pass/fail decision about an artifact: the gate's figures, rows that failed to run, the
float32 I/O rule (from the runtime's dtypes), and the other runs the caller made of the same artifact
(e.g. LiteRT resized to another batch), which it is given as results, not as failures to append. It
collects every failure instead of stopping at the first, and serialises to JSON. Export, validate and
bench all use it; no backend has its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeport.validation.gates import Gate
from edgeport.validation.metrics import DEGENERATE_STD, OutputMetrics, output_metrics

# gate field -> (metric attribute, comparison); "<=" means the measured value must not exceed the bound.
_CHECKS = {
    "max_abs_diff": ("max_abs_diff", "<="),
    "min_cosine": ("cosine_mean", ">="),
    "min_pearson": ("pearson", ">="),
    "min_centred_pearson": ("centred_pearson", ">="),
    "min_top1": ("top1_agreement", ">="),
}


@dataclass(frozen=True)
class Check:
    output: str
    metric: str
    value: float | None
    op: str
    bound: float
    passed: bool

    def describe(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.6g}"
        return f"{self.output}.{self.metric} = {shown} (gate {self.op} {self.bound:g})"


@dataclass
class Comparison:
    """All figures and checks for one artifact against its reference."""

    gate: Gate
    outputs: dict[str, OutputMetrics]
    failed_rows: int
    total_rows: int
    checks: list[Check] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    not_judged: list[str] = field(default_factory=list)  # gated metrics that could not be computed, and why

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[str]:
        return self.problems + [c.describe() for c in self.checks if not c.passed]

    def headline(self) -> dict:
        """The figures a one-line table shows: the worst over outputs."""
        ms = list(self.outputs.values())
        if not ms:
            return {}
        top1 = [m.top1_agreement for m in ms if m.top1_agreement is not None]
        return {
            "max_abs_diff": max(m.max_abs_diff for m in ms),
            "mean_abs_diff": max(m.mean_abs_diff for m in ms),
            "cosine_mean": min(m.cosine_mean for m in ms),
            "cosine_worst": min(m.cosine_worst for m in ms),
            "top1_agreement": min(top1) if top1 else None,
        }

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "gate": self.gate.to_dict(),
            "rows": self.total_rows,
            "failed_rows": self.failed_rows,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            "checks": [c.__dict__ for c in self.checks],
            "failures": self.failures,
            "not_judged": self.not_judged,
        }


#: dtypes that count as float32 I/O
FLOAT32_IO = frozenset({"float32"})


@dataclass(frozen=True)
class OtherRun:
    """Another run of the same artifact, judged with the main comparison: its ``Comparison``, or ``error``
    (why it could not be made; ``None`` with no comparison = it behaved as required)."""

    label: str  # e.g. "at batch 7 through resize_tensor_input"
    comparison: Comparison | None = None
    error: str | None = None


def compare(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    gate: Gate,
    *,
    failed: np.ndarray | None = None,
    io_dtypes: dict[str, dict[str, str]] | None = None,
    other_runs: tuple[OtherRun, ...] | list[OtherRun] = (),
) -> Comparison:
    """Compare outputs by name. ``failed`` marks rows the artifact could not run (excluded from metrics,
    counted against ``gate.max_failed_rows``); ``io_dtypes`` (the runner's ``io_dtypes()``) is judged
    against ``gate.float32_io``; each of ``other_runs`` fails the result when it failed or errored."""
    names = list(reference)
    total = int(np.asarray(reference[names[0]]).shape[0]) if names else 0
    failed = np.zeros(total, dtype=bool) if failed is None else np.asarray(failed, dtype=bool)
    ok = ~failed
    result = Comparison(gate=gate, outputs={}, failed_rows=int(failed.sum()), total_rows=total)
    if gate.float32_io and io_dtypes is not None:
        bad = {f"{kind[:-1]} {n}": d for kind in ("inputs", "outputs") for n, d in io_dtypes.get(kind, {}).items()
               if d not in FLOAT32_IO}
        if bad:
            result.problems.append(f"quantized artifact must keep float32 I/O, found {bad}")
    for run in other_runs:
        if run.error is not None:
            result.problems.append(f"{run.label}: {run.error}")
        elif run.comparison is not None and not run.comparison.passed:
            result.problems.append(f"{run.label}: " + "; ".join(run.comparison.failures))
    missing = [n for n in names if n not in candidate]
    if missing:
        result.problems.append(f"artifact lacks output(s) {missing}; it has {sorted(candidate)}")
    if result.failed_rows > gate.max_failed_rows:
        result.problems.append(f"artifact failed to run on {result.failed_rows} of {total} inputs")
    if not ok.any():
        result.problems.append("no input ran successfully")
        return result
    for name in names:
        if name in missing:
            continue
        rows = int(np.asarray(candidate[name]).shape[0]) if np.ndim(candidate[name]) else 0
        if rows != total:
            result.problems.append(f"output '{name}' has {rows} rows for {total} inputs")
            continue
        ref = np.asarray(reference[name])[ok]
        cand = np.asarray(candidate[name])[ok]
        if ref.shape != cand.shape:
            result.problems.append(f"output '{name}' has shape {cand.shape[1:]}, reference {ref.shape[1:]}")
            continue
        m = output_metrics(ref, cand)
        result.outputs[name] = m
        if m.degenerate:
            result.problems.append(
                f"degenerate reference: output '{name}' varies by less than {DEGENERATE_STD:g} across "
                f"{m.rows} inputs (std {m.reference_std:.2g}), so agreement proves nothing"
            )
        for gate_field, (attr, op) in _CHECKS.items():
            bound = getattr(gate, gate_field)
            if bound is None:
                continue
            value = getattr(m, attr)
            if value is None:  # e.g. top-1 on a single-column output or with no clear rows: said, not hidden
                result.not_judged.append(f"{name}.{attr}: {_why_not_judged(attr, m)}")
                continue
            passed = value <= bound if op == "<=" else value >= bound
            result.checks.append(Check(name, attr, value, op, bound, bool(passed)))
    return result


def _why_not_judged(attr: str, m: OutputMetrics) -> str:
    if attr == "top1_agreement":
        if m.top1_rows == 0:
            return "no reference row's top-1 leads its runner-up by 0.05 (near-ties are noise), so it is not judged"
    return "not computable on this output, so it is not judged"

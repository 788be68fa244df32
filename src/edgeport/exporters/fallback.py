"""Accuracy-driven float fallback (SPEC §4, ``--auto-fallback``) for ``tflite_int8_full`` and
``onnx_int8_static``.

When the quantized artifact misses its gate, one layer at a time is kept float, until the gate holds or
``budget`` layers are float:

1. the per-layer report of the current artifact (``validation/per_layer.py``) ranks the quantized layers;
   its worst layer is kept float and the artifact rebuilt and judged;
2. when that pick does not move the gate (the gate margin, ``gate_margin``, grows by less than
   ``MIN_GAIN``), a trial keeps each of the next ``trial_candidates`` ranked layers float alone, and the one
   that moves the gate most is kept instead (the first that passes ends the trial).

``auto_fallback`` is the loop over three callables (build an artifact with layers kept float, judge it,
report it); ``fallback_export`` drives it for a ``ModelHandle`` with the exporters, runners and the
comparator. The layers reach the exporters as ``ExportOptions.fallback_float``: the Keras TFLite route keeps
their ops float through the converter's QuantizationDebugger ``denylisted_nodes`` (``tflite_keras``), ONNX
static excludes their nodes from ONNX Runtime's quantizer (``onnx.fallback_nodes``: torch module paths,
Keras layers or node names). Each step records its figures, the artifact's size and its latency.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgeport.errors import ConfigError

log = logging.getLogger(__name__)

#: formats the fallback applies to (static INT8 whose layers can be kept float one by one)
FALLBACK_FORMATS = ("tflite_int8_full", "onnx_int8_static")
#: float artifact of the same backend, the per-layer report's reference
FLOAT_FORMAT = {"tflite_int8_full": "tflite", "onnx_int8_static": "onnx"}
#: (format, source framework) pairs whose exporter cannot keep a named layer float, with the reason
_AEQ = ("its TFLite route quantizes with ai-edge-quantizer, whose float regexes keep every op in front of a kept op "
        "float, and keeping one op float by its tensor name gave a file LiteRT refuses (per-channel scales left on "
        "the float op's weights); use onnx_int8_static")
NOT_APPLICABLE = {("tflite_int8_full", "torch"): _AEQ, ("tflite_int8_full", "onnx"): _AEQ}
DEFAULT_BUDGET = 3
DEFAULT_TRIAL_CANDIDATES = 6
#: a pick "moves the gate" when the gate margin grows by more than this (relative slack of the worst check)
MIN_GAIN = 1e-3
#: reference rows the per-layer report runs on (every intermediate tensor of every row is held in memory)
PER_LAYER_ROWS = 64


def not_applicable(fmt_name: str, framework: str) -> str | None:
    """Why ``--auto-fallback`` cannot repair this format from this kind of source, or None when it can."""
    if fmt_name not in FALLBACK_FORMATS:
        return f"it applies to {', '.join(FALLBACK_FORMATS)}"
    return NOT_APPLICABLE.get((fmt_name, framework))


def gate_margin(cmp) -> float:
    """The comparison's slack on its tightest gate, relative to the bound: > 0 passes, < 0 misses. A
    problem (rows that failed to run, a missing output, a degenerate reference) counts as -1 at least."""
    slack = []
    for c in cmp.checks:
        if c.value is None:
            continue
        scale = max(abs(c.bound), 1e-12)
        slack.append((c.value - c.bound) / scale if c.op == ">=" else (c.bound - c.value) / scale)
    m = min(slack) if slack else 0.0
    if cmp.problems:
        m = min(m, -1.0)
    return float(m) if math.isfinite(m) else -1.0


@dataclass
class FallbackStep:
    step: int
    float_layers: list[str]
    added: str | None
    chosen_by: str  # "plain INT8" | "per-layer ranking" | "trial"
    passed: bool
    gate_margin: float
    headline: dict
    failures: list[str]
    size_bytes: int | None
    latency: dict | None
    artifact: str
    trials: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FallbackResult:
    format: str
    budget: int
    passed: bool
    float_layers: list[str]
    stopped: str
    steps: list[FallbackStep]
    artifact: Path
    comparison: object  # the final Comparison
    per_layer: object | None = None  # PerLayerReport of the plain INT8 artifact

    def cost(self) -> dict:
        """Size and latency of the final artifact against the plain INT8 one."""
        first, last = self.steps[0], self.steps[-1]
        out = {"size_bytes_int8": first.size_bytes, "size_bytes_final": last.size_bytes,
               "size_bytes_added": (last.size_bytes - first.size_bytes)
               if first.size_bytes is not None and last.size_bytes is not None else None}
        p0 = (first.latency or {}).get("p50_ms")
        p1 = (last.latency or {}).get("p50_ms")
        out.update({"latency_p50_ms_int8": p0, "latency_p50_ms_final": p1,
                    "latency_ratio": (p1 / p0) if p0 and p1 else None})
        return out

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "budget": self.budget,
            "passed": self.passed,
            "float_layers": list(self.float_layers),
            "stopped": self.stopped,
            "cost": self.cost(),
            "steps": [s.to_dict() for s in self.steps],
            "final": self.comparison.to_dict() if self.comparison is not None else None,
            "per_layer_int8": self.per_layer.to_dict() if self.per_layer is not None else None,
        }

    def to_json(self) -> str:
        from edgeport.fileio import strict_json

        return strict_json(self.to_dict())

    def table(self) -> str:
        from edgeport.reporting.table import columns, human_size

        header = ("step", "float layers", "added by", "cosine", "top-1", "margin", "size", "p50 ms", "gate")
        rows = []
        for s in self.steps:
            h = s.headline or {}
            p50 = (s.latency or {}).get("p50_ms")
            rows.append((s.step, ", ".join(s.float_layers) or "-", s.chosen_by,
                         "-" if h.get("cosine_mean") is None else f"{h['cosine_mean']:.4f}",
                         "-" if h.get("top1_agreement") is None else f"{h['top1_agreement']:.3f}",
                         f"{s.gate_margin:+.4f}", human_size(s.size_bytes), "-" if p50 is None else f"{p50:.3f}",
                         "PASS" if s.passed else "FAIL"))
        verdict = "passes" if self.passed else "still fails"
        return "\n".join([f"auto-fallback {self.format} (budget {self.budget} layers): {verdict}; {self.stopped}",
                          *columns(header, rows)])


def auto_fallback(
    build: Callable[[tuple[str, ...]], Path],
    judge: Callable[[Path], object],
    report: Callable[[Path], object],
    *,
    budget: int = DEFAULT_BUDGET,
    latency: Callable[[Path], dict] | None = None,
    eligible: Callable[[str], bool] | None = None,
    trial_candidates: int = DEFAULT_TRIAL_CANDIDATES,
    fmt: str = "",
) -> FallbackResult:
    """The fallback loop. ``build(layers)`` writes the artifact with ``layers`` kept float and returns its
    path; ``judge(path)`` returns the comparator's ``Comparison`` against the gate; ``report(path)`` the
    ``PerLayerReport`` (its ``layers()`` worst first); ``latency(path)`` a dict with ``p50_ms``;
    ``eligible(layer)`` says which reported layers the exporter can keep float."""
    if int(budget) != budget or budget < 1:
        raise ConfigError(f"--fallback-budget must be a whole number of layers >= 1, got {budget!r}")
    if trial_candidates < 0:
        raise ConfigError(f"trial candidates must be >= 0, got {trial_candidates}")

    def record(k: int, layers: tuple[str, ...], added, how, path: Path, cmp, trials=()) -> FallbackStep:
        from edgeport.fileio import path_size

        return FallbackStep(step=k, float_layers=list(layers), added=added, chosen_by=how, passed=bool(cmp.passed),
                            gate_margin=gate_margin(cmp), headline=cmp.headline(), failures=list(cmp.failures),
                            size_bytes=path_size(path) if Path(path).exists() else None,
                            latency=latency(path) if latency is not None else None, artifact=str(path),
                            trials=list(trials))

    kept: tuple[str, ...] = ()
    path = build(kept)
    cmp = judge(path)
    steps = [record(0, kept, None, "plain INT8", path, cmp)]
    first_report = None
    stopped = "the gate holds with no layer float" if cmp.passed else ""
    while not cmp.passed:
        if len(kept) >= budget:
            stopped = f"budget of {budget} layer(s) spent"
            break
        rep = report(path)
        first_report = first_report or rep
        ranked = [n for n in rep.layers() if n not in kept and (eligible is None or eligible(n))]
        if not ranked:
            stopped = "no quantized layer left to keep float"
            break
        pick, how = ranked[0], "per-layer ranking"
        cand_path = build((*kept, pick))
        cand = judge(cand_path)
        trials: list[dict] = []
        if not cand.passed and gate_margin(cand) <= gate_margin(cmp) + MIN_GAIN:
            log.info("keeping %s float did not move the gate (margin %.4f -> %.4f): trying one layer at a time",
                     pick, gate_margin(cmp), gate_margin(cand))
            trials.append(_trial_row(pick, cand))
            best = (pick, cand_path, cand)
            for layer in ranked[1 : 1 + trial_candidates]:
                p = build((*kept, layer))
                c = judge(p)
                trials.append(_trial_row(layer, c))
                if gate_margin(c) > gate_margin(best[2]):
                    best = (layer, p, c)
                if c.passed:
                    break
            if best[0] != pick:
                how = "trial"
            pick, cand_path, cand = best
        kept = (*kept, pick)
        path, cmp = cand_path, cand
        steps.append(record(len(steps), kept, pick, how, path, cmp, trials))
        if cmp.passed:
            stopped = f"the gate holds with {len(kept)} layer(s) float"
    return FallbackResult(format=fmt, budget=int(budget), passed=bool(cmp.passed), float_layers=list(kept),
                          stopped=stopped, steps=steps, artifact=Path(path), comparison=cmp, per_layer=first_report)


def _trial_row(layer: str, cmp) -> dict:
    return {"layer": layer, "passed": bool(cmp.passed), "gate_margin": gate_margin(cmp), **cmp.headline()}


# ----------------------------------------------------------------------------------------------- handle


def fallback_export(
    handle,
    fmt_name: str,
    *,
    work_dir: Path,
    options=None,
    gate=None,
    reference: dict | None = None,
    reference_outputs: dict | None = None,
    budget: int = DEFAULT_BUDGET,
    trial_candidates: int = DEFAULT_TRIAL_CANDIDATES,
    per_layer_rows: int = PER_LAYER_ROWS,
    latency_repeats: int = 30,
) -> FallbackResult:
    """Run the fallback for a handle: artifacts from the format's exporter (``ExportOptions.fallback_float``)
    in ``work_dir``, judged by the comparator on ``reference`` (the handle's reference inputs by default)
    against ``reference_outputs`` (the source model's, run in its runtime, by default), ranked by the
    per-layer report against the float artifact of the same backend, latency from the format's runner at
    batch 1. The chosen artifact is ``result.artifact``; the caller moves it into place."""
    import numpy as np

    from edgeport.exporters import FORMATS, ExportOptions, gate_for, get_exporter
    from edgeport.runtimes import open_runner
    from edgeport.validation import compare
    from edgeport.validation.per_layer import per_layer

    why = not_applicable(fmt_name, handle.framework)
    if why:
        raise ConfigError(f"--auto-fallback cannot repair {fmt_name} of a {handle.framework} source: {why}")
    fmt = FORMATS.get(fmt_name)
    float_fmt = FORMATS.get(FLOAT_FORMAT[fmt_name])
    options = options or ExportOptions()
    gate = gate or gate_for(fmt_name, tol=options.tol)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if reference is None:
        if handle.reference_inputs is None:
            raise ConfigError("the fallback needs reference inputs: pass --reference-inputs FILE.npz")
        reference = handle.reference_inputs(200, 0)
    if reference_outputs is None:
        reference_outputs = _source_outputs(handle, reference)
    per_layer_feeds = {k: np.asarray(v)[:per_layer_rows] for k, v in reference.items()}
    latency_feeds = {k: np.asarray(v)[:1] for k, v in reference.items()}

    float_path = work_dir / f"{handle.name}_float{float_fmt.extension}"
    get_exporter(float_fmt)(handle, fmt=float_fmt, path=float_path, options=replace(options, work_dir=work_dir))
    built: dict[tuple[str, ...], Path] = {}

    def build(layers: tuple[str, ...]) -> Path:
        if layers not in built:
            path = work_dir / f"{handle.name}_fallback{len(built)}{fmt.extension}"
            get_exporter(fmt)(handle, fmt=fmt, path=path,
                              options=replace(options, fallback_float=tuple(layers), work_dir=work_dir))
            built[layers] = path
        return built[layers]

    def judge(path: Path):
        got, failed = open_runner(fmt.runtime, path).run(reference)
        return compare(reference_outputs, got, gate, failed=failed)

    known = _layer_names(handle)

    def report(path: Path):
        return per_layer(path, float_path, per_layer_feeds, layers=known)

    def latency(path: Path) -> dict:
        t = open_runner(fmt.runtime, path).latency(latency_feeds, repeats=latency_repeats)
        return {"p50_ms": 1e3 * t["p50_s"], "p90_ms": 1e3 * t["p90_s"], "batch": 1, "repeats": latency_repeats}

    # the Keras TFLite route keeps Keras layers float by their scope: other reported names cannot be kept float
    eligible = (lambda n: n in set(known)) if handle.framework == "keras" and fmt.backend == "tflite" else None
    return auto_fallback(build, judge, report, budget=budget, latency=latency, eligible=eligible,
                         trial_candidates=trial_candidates, fmt=fmt_name)


def _layer_names(handle) -> list[str]:
    """Keras layer names (the per-layer report names tensors by them); torch reports use module scopes."""
    return [layer.name for layer in getattr(handle.model, "layers", [])] if handle.framework == "keras" else []


def _source_outputs(handle, feeds: dict) -> dict:
    """The source model's outputs on ``feeds``, run in its own runtime (as the export pipeline does)."""
    from edgeport.runtimes import runner_class

    outs, failed = runner_class(handle.framework).from_handle(handle).run(feeds)
    if failed.any():
        raise ConfigError(f"the source model itself failed on {int(failed.sum())} reference rows")
    return outs


def steps_summary(result: FallbackResult) -> Sequence[dict]:
    """One line per step for a manifest: layers float, passed, margin, size, p50 latency."""
    return [{"step": s.step, "float_layers": s.float_layers, "chosen_by": s.chosen_by, "passed": s.passed,
             "gate_margin": s.gate_margin, "size_bytes": s.size_bytes,
             "latency_p50_ms": (s.latency or {}).get("p50_ms")} for s in result.steps]

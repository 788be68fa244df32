"""The export pipeline: source handle -> every requested format -> run in its runtime -> compared -> kept.

Each artifact is written in the output folder's staging area (``fileio.OutputPlan``), run on the
reference inputs in its real runtime, compared with the source model by the one comparator, and kept under
its final name (or ``<name>.failed.<ext>`` when it misses its gate). One format failing never stops the
others. Every output is named and checked before work; all of them move into place together at the end.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import traceback
import types
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from edgeport.errors import (
    ConfigError,
    EdgeportError,
    SourceError,
    UnsupportedFormatError,
)
from edgeport.exporters import (
    FORMATS,
    ExportOptions,
    FormatSpec,
    gate_for,
    get_exporter,
)
from edgeport.exporters.base import DEVICES
from edgeport.fileio import (
    OutputPlan,
    atomic_save_npz,
    path_size,
    remove_path,
    sha256_path,
)
from edgeport.runtimes import open_runner, runner_class
from edgeport.sources.base import Feeds, ModelHandle
from edgeport.validation import Comparison, OtherRun, compare

log = logging.getLogger(__name__)

DEFAULT_FORMATS = ("onnx_fp16",)
MANIFEST = "manifest.json"
VALIDATION = "validation.json"
REPORT = "report.html"
#: source framework -> the runtime that runs it as the reference (default: the runtime of that name)
SOURCE_RUNTIMES = {"onnx": "onnxruntime", "tflite": "litert"}
#: rows of golden vectors kept in the export folder (the source's outputs once, an artifact's only where they
#: differ from the source's beyond the gate's tolerance). Measured on the geo model at 12,012 species
#: (benchmarks/results/export_geo.json): 5.4 MB for 76 MB of artifacts, folder 1.08x; 200 rows of inputs,
#: source and artifact outputs in every artifact's file were 150 MB, folder 2.99x
DEFAULT_GOLDEN_ROWS = 32


@dataclass(frozen=True)
class ExportConfig:
    """What the pipeline does with a handle (the CLI's flags, as one checked object)."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    outdir: Path = Path("exports")
    force: bool = False
    tol: float = 1e-4
    fp16_io: bool = False
    device: str = "auto"
    reference_inputs: Path | None = None
    calibration_inputs: Path | None = None
    reference_rows: int = 200
    seed: int = 0
    batch_validate: int = 0
    validate_batch_size: int = 256
    golden_rows: int = DEFAULT_GOLDEN_ROWS
    #: --auto-fallback: a tflite_int8_full / onnx_int8_static artifact that misses its gate keeps its worst
    #: layers float, up to ``fallback_budget`` of them (exporters/fallback.py)
    auto_fallback: bool = False
    fallback_budget: int = 3
    license_file: Path | None = None
    gate_overrides: dict = field(default_factory=dict)
    options: ExportOptions = field(default_factory=ExportOptions)
    command_line: str = ""

    def __post_init__(self) -> None:
        if not self.formats:
            raise ConfigError("no formats given; pass --formats NAME [NAME ...] or --formats all")
        if self.reference_rows < 2:
            raise ConfigError(f"--reference-rows must be >= 2, got {self.reference_rows}")
        if self.golden_rows < 1:
            raise ConfigError(f"--golden-rows must be >= 1, got {self.golden_rows}")
        if self.fallback_budget < 1:
            raise ConfigError(f"--fallback-budget must be >= 1 layer, got {self.fallback_budget}")
        if self.batch_validate < 0:
            raise ConfigError(f"--batch-validate must be >= 0, got {self.batch_validate}")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be {', '.join(DEVICES)}, got '{self.device}'")


@dataclass
class ArtifactResult:
    format: str
    status: str  # "passed" | "failed" | "error"
    path: Path | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    export_seconds: float | None = None
    validate_seconds: float | None = None
    comparison: Comparison | None = None
    worst_seed: int | None = None
    seeds: list[dict] = field(default_factory=list)
    golden: Path | None = None
    io_dtypes: dict | None = None
    notes: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self, outdir: Path) -> dict:
        rel = (lambda p: str(Path(p).relative_to(outdir)) if p else None)
        return {
            "format": self.format,
            "status": self.status,
            "file": rel(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "export_seconds": self.export_seconds,
            "validate_seconds": self.validate_seconds,
            "golden_vectors": rel(self.golden),
            "io_dtypes": self.io_dtypes,
            "validation": self.comparison.to_dict() if self.comparison is not None else None,
            "worst_seed": self.worst_seed,
            "batch_validate": self.seeds,
            "notes": self.notes,
            "error": self.error,
        }


@dataclass
class ExportResult:
    outdir: Path
    handle: ModelHandle
    artifacts: list[ArtifactResult]
    reference_summary: dict
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.artifacts)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def resolve_formats(names: Sequence[str], handle: ModelHandle, *, calibration_available: bool) -> list[FormatSpec]:
    """Expand ``all`` and check every name before any work: unknown names, formats that do not apply to
    this source, calibrated formats without calibration data."""
    if "all" in names:
        if len(names) > 1:
            raise ConfigError("'all' already means every format; pass it alone")
        return [
            f
            for _, f in FORMATS.items()
            if handle.framework in f.frameworks and (calibration_available or not f.needs_calibration)
        ]
    specs = []
    for name in dict.fromkeys(names):
        fmt = FORMATS.get(name)
        if handle.framework not in fmt.frameworks:
            raise UnsupportedFormatError(
                f"format '{name}' does not apply to a {handle.framework} source; it applies to "
                f"{sorted(fmt.frameworks)}"
            )
        if fmt.needs_calibration and not calibration_available:
            raise ConfigError(
                f"format '{name}' needs calibration data and this model's family does not say how to make it; "
                "pass --calibration-inputs FILE.npz (one array per input), a data folder where the family has "
                "one, or choose a dynamic format (e.g. onnx_int8)"
            )
        specs.append(fmt)
    return specs


def golden_name(fmt: FormatSpec, model_name: str, failed: bool = False) -> str:
    """``<artifact stem>_validation_data.npz``; non-TFLite artifacts carry their extension in the stem so
    that ``geomodel.onnx`` and ``geomodel.tflite`` do not collide."""
    art = fmt.failed_name(model_name) if failed else fmt.artifact_name(model_name)
    stem, ext = os.path.splitext(art)
    tag = "" if ext in (".tflite", "") else "_" + ext.lstrip(".")
    return f"{stem}{tag}_validation_data.npz"


def golden_reference_name(model_name: str) -> str:
    """The folder's one file of golden inputs and source outputs (``input__<name>``, ``reference__<output>``)."""
    return f"{model_name}_reference_validation_data.npz"


def load_golden(path: Path) -> dict:
    """An artifact's golden vectors: ``inputs``, ``reference`` (from the folder's reference file),
    ``artifact`` (output -> the artifact's own outputs, or None where they match ``reference`` within
    ``tolerance[output]``)."""
    path = Path(path)
    with np.load(path) as g:
        shared = path.parent / str(g["reference_file"])
        tolerance = {k.removeprefix("within__"): float(g[k]) for k in g.files if k.startswith("within__")}
        artifact: dict = {k.removeprefix("artifact__"): g[k] for k in g.files if k.startswith("artifact__")}
    with np.load(shared) as r:
        inputs = {k.removeprefix("input__"): r[k] for k in r.files if k.startswith("input__")}
        reference = {k.removeprefix("reference__"): r[k] for k in r.files if k.startswith("reference__")}
    return {"inputs": inputs, "reference": reference, "tolerance": tolerance,
            "artifact": {k: artifact.get(k) for k in reference}}


def _save_golden(path: Path, model_name: str, reference: dict, got: dict, tol: float, rows: int) -> None:
    """Per artifact: its outputs only where they differ from the source's by more than ``tol``."""
    arrays: dict = {"reference_file": np.array(golden_reference_name(model_name)), "rows": np.array(rows)}
    for k, ref in reference.items():
        a, r = np.asarray(got[k][:rows]), np.asarray(ref[:rows])
        same = a.shape == r.shape and (not a.size or float(np.abs(a.astype(np.float64) - r).max()) <= tol)
        arrays[f"within__{k}" if same else f"artifact__{k}"] = np.float64(tol) if same else a
    atomic_save_npz(path, **arrays)


def _copied_files(outdir: Path, handle: ModelHandle) -> list[tuple[Path, Path]]:
    """(source, destination) of the side files copied beside the artifacts; none when they are the same
    file (``--outdir`` is the source's folder)."""
    pairs = []
    for src, name in ((handle.labels_file, "labels.txt"),
                      (handle.license_file, handle.license_file.name if handle.license_file else "")):
        if src is None:
            continue
        dst = outdir / name
        if dst.exists() and os.path.samefile(src, dst):
            continue
        pairs.append((Path(src), dst))
    return pairs


def check_labels(handle: ModelHandle) -> None:
    """The labels file beside the model: UTF-8 text with one name per output of the model."""
    f = handle.labels_file
    if f is None:
        return
    try:
        lines = [ln for ln in Path(f).read_bytes().decode("utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError as e:
        raise SourceError(f"{f} is not UTF-8 text (byte {e.start}): save it as UTF-8, one label per line") from None
    except OSError as e:
        raise SourceError(f"cannot read {f} ({e.strerror})") from None
    widths = {t.name: t.shape[-1] for t in handle.outputs if len(t.shape) == 2}
    if widths and len(lines) not in widths.values():
        raise SourceError(f"{f} lists {len(lines)} labels but the model's outputs have "
                          f"{', '.join(f'{n}: {w}' for n, w in widths.items())} values per row: give the labels "
                          "file that belongs to this model")


def apply_license(handle: ModelHandle, config: ExportConfig) -> None:
    """``--license FILE`` replaces the licence found beside the source (or the factory's module)."""
    if config.license_file is not None:
        lic = Path(config.license_file)
        if not lic.is_file():
            raise SourceError(f"--license {lic}: no such file; give the model's licence text file")
        handle.license_file = lic


def check_before_work(handle: ModelHandle, config: ExportConfig, formats: Sequence[str] | None = None) -> None:
    """Every check that needs the loaded model but no work: labels, gate names and values, the output
    folder (writable, no earlier outputs without --force). Run before building calibration data."""
    apply_license(handle, config)
    check_labels(handle)
    from edgeport.exporters import check_gate_overrides

    check_gate_overrides(config.gate_overrides)
    specs = resolve_formats(formats or config.formats, handle, calibration_available=True)
    with plan_outputs(Path(config.outdir), handle, specs, config.force):
        pass


def plan_outputs(outdir: Path, handle: ModelHandle, specs: list[FormatSpec], force: bool) -> OutputPlan:
    """Every file this export may write (artifact, failed artifact and golden vectors of each format, the
    reports, the copied labels and licence), checked before work: existing ones need ``--force``."""
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"--outdir {outdir} is a file; choose a directory")
    plan = OutputPlan(force=force, what="earlier exports",
                      hint="pass --force to replace them or choose another --outdir")
    for f in specs:
        for failed in (False, True):
            plan.add(outdir / (f.failed_name(handle.name) if failed else f.artifact_name(handle.name)))
            plan.add(outdir / golden_name(f, handle.name, failed=failed))
    for name in (VALIDATION, MANIFEST, REPORT, golden_reference_name(handle.name)):
        plan.add(outdir / name)
    for _, dst in _copied_files(outdir, handle):
        plan.add(dst)
    plan.check()
    return plan


def read_npz(path: Path, flag: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` of numbers (no pickles, no strings); one clear line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{flag} file not found: {path}" if not path.exists() else f"{flag} {path} is not a file")
    try:
        data = np.load(path)
        if not hasattr(data, "files"):
            raise ValueError("it holds one array, not named arrays: save one array per input with np.savez")
        with data:
            feeds = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise SourceError(f"{flag} {path} is not a readable .npz file ({str(e).splitlines()[0] if str(e) else e})"
                          ) from None
    bad = {k: str(v.dtype) for k, v in feeds.items() if v.dtype.kind not in "biuf"}
    if bad:
        raise SourceError(f"{flag} {path} holds non-numeric arrays {bad}; give float or integer arrays, one per "
                          "model input")
    empty = [k for k, v in feeds.items() if v.ndim == 0 or v.shape[0] == 0]
    if empty:
        raise SourceError(f"{flag} {path}: array(s) {empty} have no rows")
    return feeds


def load_feeds(handle: ModelHandle, path: Path, flag: str) -> Feeds:
    """An ``.npz`` with one array per model input name, cast to the input dtypes."""
    feeds = read_npz(path, flag)
    missing = [n for n in handle.input_names if n not in feeds]
    if missing:
        raise SourceError(f"{flag} {path} lacks input array(s) {missing}; it holds {sorted(feeds)}")
    return {t.name: np.asarray(feeds[t.name], dtype=t.dtype) for t in handle.inputs}


def _feeds_file_reader(handle: ModelHandle, path: Path, flag: str):
    feeds = load_feeds(handle, path, flag)

    def read(n: int = 256, seed: int = 1) -> Feeds:
        return {k: v[:n] for k, v in feeds.items()}

    return read


def _first_error(runner, feeds: Feeds, failed: np.ndarray) -> str:
    """The error of the first failing reference row, for the message."""
    i = int(np.argmax(failed))
    try:
        runner.infer({k: v[i : i + 1] for k, v in feeds.items()})
    except Exception as e:  # noqa: BLE001 - reported to the user
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return "the row failed in a batch but not alone"


def calibration_summary(feeds: Feeds, *, source: str) -> dict:
    """Size, per-input range and content hash of a calibration set (for the manifest)."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(feeds):
        h.update(k.encode())
        h.update(np.ascontiguousarray(feeds[k]).tobytes())
    return {
        "source": source,
        "rows": int(next(iter(feeds.values())).shape[0]),
        "range": {k: [float(np.min(v)), float(np.max(v))] for k, v in feeds.items()},
        "sha256": h.hexdigest(),
    }


def reference_feeds(handle: ModelHandle, config: ExportConfig, seed: int) -> Feeds:
    """The seeded reference inputs: a user's file, the family's set, or seeded normal noise."""
    if config.reference_inputs is not None:
        return load_feeds(handle, Path(config.reference_inputs), "--reference-inputs")
    if handle.reference_inputs is not None:
        return handle.reference_inputs(config.reference_rows, seed)
    log.warning("no family reference inputs for this model: validating on seeded N(0,1) inputs; "
                "pass --reference-inputs FILE.npz with realistic inputs")
    rng = np.random.default_rng(seed)
    return {t.name: rng.standard_normal((config.reference_rows, *[d or 1 for d in t.shape[1:]])).astype(t.dtype)
            for t in handle.inputs}


def _reference_runner(handle: ModelHandle, device: str):
    if handle.framework == "torch":
        return runner_class("torch").from_handle(handle, device=device)
    return runner_class(SOURCE_RUNTIMES.get(handle.framework, handle.framework)).from_handle(handle)


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def export_handle(handle: ModelHandle, config: ExportConfig) -> ExportResult:
    """Export ``handle`` to every format in ``config`` and validate each against the source."""
    outdir = Path(config.outdir)
    apply_license(handle, config)
    if config.calibration_inputs is not None:
        handle.calibration_inputs = _feeds_file_reader(handle, Path(config.calibration_inputs), "--calibration-inputs")
    elif config.reference_inputs is not None and handle.calibration_inputs is None:  # e.g. an ONNX source
        handle.calibration_inputs = _feeds_file_reader(handle, Path(config.reference_inputs), "--reference-inputs")
        handle.notes.setdefault("calibration_extra", {})["source"] = \
            f"{config.reference_inputs} (--reference-inputs: calibrated on the rows it is validated on)"
    specs = resolve_formats(config.formats, handle, calibration_available=handle.calibration_inputs is not None)
    check_labels(handle)
    for fmt in specs:  # a --gate naming a metric this format does not have fails here, before work
        gate_for(fmt.name, tol=config.tol, fp16_io=config.fp16_io, overrides=config.gate_overrides)
    ignored = sorted(set(config.gate_overrides) - {f.name for f in specs})
    if ignored:
        log.warning("--gate for %s: not among the formats of this export (%s)", ", ".join(ignored),
                    ", ".join(f.name for f in specs))
    with plan_outputs(outdir, handle, specs, config.force) as plan:
        handle.scratch_dir = plan.work_dir(outdir, "edgeport-source-")
        result = _export_planned(handle, config, specs, outdir, plan)
        plan.commit(prune=True)  # a format whose new artifact failed loses its earlier passing one
    result.files = {k: outdir / v for k, v in (("manifest", MANIFEST), ("validation", VALIDATION), ("report", REPORT))}
    return result


def _export_planned(handle: ModelHandle, config: ExportConfig, specs: list[FormatSpec], outdir: Path,
                    plan: OutputPlan) -> ExportResult:
    from edgeport.reporting import write_outputs

    device = _resolve_device(config.device)
    if any(f.needs_calibration for f in specs):
        handle.notes["calibration"] = calibration_summary(
            handle.calibration_inputs(config.options.calibration_samples, 1),
            source=str(config.calibration_inputs) if config.calibration_inputs else f"family {handle.family}",
        ) | handle.notes.get("calibration_extra", {})

    seeds = [config.seed] + [config.seed + 1000 * (k + 1) for k in range(max(0, config.batch_validate - 1))]
    reference = _reference_runner(handle, device)
    refs: list[tuple[int, Feeds, dict[str, np.ndarray]]] = []
    for seed in seeds:
        feeds = reference_feeds(handle, config, seed)
        outs, failed = reference.run(feeds, batch_size=config.validate_batch_size)
        if failed.any():
            raise SourceError(f"the source model itself failed on {int(failed.sum())} of {failed.size} reference "
                              f"inputs ({_first_error(reference, feeds, failed)})")
        refs.append((seed, feeds, outs))
    ref_summary = {
        "rows": int(next(iter(refs[0][1].values())).shape[0]),
        "seeds": seeds,
        "source": str(config.reference_inputs) if config.reference_inputs else (handle.family or "seeded normal"),
        "device": device,
        "golden_file": golden_reference_name(handle.name),
        "golden_rows": min(config.golden_rows, int(next(iter(refs[0][1].values())).shape[0])),
    }

    results = []
    for i, fmt in enumerate(specs, 1):
        log.info("[%d/%d] %s ...", i, len(specs), fmt.name)
        res = _export_one(handle, fmt, config, outdir, refs, plan)
        results.append(res)
        shown = res.status.upper() if res.status != "error" else f"ERROR: {res.error}"
        log.info("[%d/%d] %s: %s", i, len(specs), fmt.name, shown)

    if any(r.golden is not None for r in results):
        _, feeds0, ref0 = refs[0]
        n = ref_summary["golden_rows"]
        atomic_save_npz(plan.staged(outdir / ref_summary["golden_file"]),
                        **{f"input__{k}": v[:n] for k, v in feeds0.items()},
                        **{f"reference__{k}": v[:n] for k, v in ref0.items()})
    for src, dst in _copied_files(outdir, handle):  # staged copies: a symlink in the folder is replaced, never followed
        shutil.copyfile(src, plan.staged(dst))
    if handle.license_file is None:
        log.warning("this export has no licence file: pass --license FILE (or put MODEL_LICENSE.txt beside the "
                    "checkpoint or the factory's module) so that users know the terms of the weights")
    result = ExportResult(outdir=outdir, handle=handle, artifacts=results, reference_summary=ref_summary)
    write_outputs(result, config, into=plan.staged(outdir / MANIFEST).parent)
    return result


def _export_one(
    handle: ModelHandle,
    fmt: FormatSpec,
    config: ExportConfig,
    outdir: Path,
    refs: list[tuple[int, Feeds, dict[str, np.ndarray]]],
    plan: OutputPlan,
) -> ArtifactResult:
    res = ArtifactResult(format=fmt.name, status="error")
    final = outdir / fmt.artifact_name(handle.name)
    failed_path = outdir / fmt.failed_name(handle.name)
    tmp = plan.staged(final)  # staged under its final name; moved into place with the rest at the end
    work = plan.work_dir(outdir, f"edgeport-{fmt.name}-")  # inside the staging area: a kill leaves no litter
    try:
        options = _replace_work_dir(config.options, work, config)
        t0 = time.perf_counter()
        res.notes = dict(get_exporter(fmt)(handle, fmt=fmt, path=tmp, options=options) or {})
        res.export_seconds = round(time.perf_counter() - t0, 3)
        if not tmp.exists():
            raise EdgeportError(f"the {fmt.backend} exporter wrote no artifact")

        gate = gate_for(fmt.name, tol=config.tol, fp16_io=config.fp16_io, overrides=config.gate_overrides)
        golden_out = _judge(res, fmt, tmp, refs, gate, config)
        if not res.comparison.passed and config.auto_fallback:
            from edgeport.exporters.fallback import FALLBACK_FORMATS, not_applicable

            why = not_applicable(fmt.name, handle.framework) if fmt.name in FALLBACK_FORMATS else None
            if why:
                res.notes["fallback"] = {"skipped": why}
                log.warning("%s: --auto-fallback skipped: %s", fmt.name, why)
            elif fmt.name in FALLBACK_FORMATS and _fall_back(res, handle, fmt, tmp, refs, gate, options, config, work):
                golden_out = _judge(res, fmt, tmp, refs, gate, config)

        res.status = "passed" if res.comparison.passed else "failed"
        dest = final if res.passed else failed_path
        if dest != final:
            os.replace(tmp, plan.staged(dest))
        res.path = dest
        res.size_bytes = path_size(plan.staged(dest))
        res.sha256 = sha256_path(plan.staged(dest))
        golden = outdir / golden_name(fmt, handle.name, failed=not res.passed)
        _save_golden(plan.staged(golden), handle.name, refs[0][2], golden_out, gate.max_abs_diff or config.tol,
                     config.golden_rows)
        res.golden = golden
    except EdgeportError as e:
        res.status, res.error = "error", str(e)
        _unstage(plan, outdir, fmt, handle.name)
    except Exception as e:
        res.status = "error"
        res.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        res.notes["traceback"] = traceback.format_exc(limit=8)
        log.debug("%s failed", fmt.name, exc_info=True)
        _unstage(plan, outdir, fmt, handle.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def _judge(res: ArtifactResult, fmt: FormatSpec, path: Path, refs, gate, config: ExportConfig) -> dict:
    """Run the artifact at ``path`` on every seed's reference inputs (and, for TFLite, resized to batch 1 and
    7) and judge it with the comparator: ``res.comparison`` is the worst seed's; returns the golden rows'
    outputs."""
    t0 = time.perf_counter()
    runner = open_runner(fmt.runtime, path)
    res.io_dtypes = runner.io_dtypes()
    res.seeds = []
    worst: tuple[int, Comparison, dict, np.ndarray, dict] | None = None
    for seed, feeds, ref_out in refs:
        got, failed = runner.run(feeds, batch_size=config.validate_batch_size)
        cmp = compare(ref_out, got, gate, failed=failed, io_dtypes=res.io_dtypes)
        res.seeds.append({"seed": seed, "passed": cmp.passed, **cmp.headline()})
        if worst is None or _worse(cmp, worst[1]):
            worst = (seed, cmp, got, failed, ref_out)
    assert worst is not None
    res.worst_seed = worst[0]
    # the golden rows run as one batch: what a device re-running the golden inputs gets (dynamic INT8
    # quantizes activations per batch, so outputs depend on which rows share the batch)
    golden_out, _ = runner.run({k: v[: config.golden_rows] for k, v in refs[0][1].items()},
                               batch_size=config.golden_rows)
    other_runs: list = []
    if hasattr(runner, "run_resized"):  # TFLite: judged again as LiteRT users feed it
        res.notes["resize_check"], other_runs = _check_resized(runner, refs[0], gate)
    res.comparison = compare(worst[4], worst[2], gate, failed=worst[3], io_dtypes=res.io_dtypes,
                             other_runs=other_runs)
    res.validate_seconds = round(time.perf_counter() - t0, 3)
    return golden_out


def _fall_back(res: ArtifactResult, handle: ModelHandle, fmt: FormatSpec, path: Path, refs, gate, options,
               config: ExportConfig, work: Path) -> bool:
    """``--auto-fallback``: the artifact missed its gate; keep its worst layers float step by step (the
    per-layer report's ranking, then one-at-a-time trials) within ``--fallback-budget`` layers. The chosen
    artifact replaces the one at ``path`` (judged again by the caller); the steps go in the notes."""
    from edgeport.exporters.fallback import fallback_export, steps_summary

    fb = fallback_export(handle, fmt.name, work_dir=work / "fallback", options=options, gate=gate,
                         reference=refs[0][1], reference_outputs=refs[0][2], budget=config.fallback_budget)
    res.notes["fallback"] = {"float_layers": fb.float_layers, "passed": fb.passed, "stopped": fb.stopped,
                             "budget": fb.budget, "cost": fb.cost(), "steps": list(steps_summary(fb))}
    if not fb.float_layers:
        return False
    shutil.copyfile(fb.artifact, path)
    return True


#: batch sizes every TFLite artifact is fed at through ``resize_tensor_input`` (the last chunk takes the rest)
RESIZE_BATCHES = (1, 7)


def _check_resized(runner, ref, gate) -> tuple[dict, list[OtherRun]]:
    """Run the artifact at batch 1 and 7 fed through ``resize_tensor_input`` (the comparator judges the runs:
    a wrong row count or wrong rows fails it). A fixed-batch artifact must instead refuse a strict resize to
    another batch. Returns the per-batch notes and the runs for ``compare(..., other_runs=)``."""
    _, feeds, ref_out = ref
    fixed = runner.fixed_batch
    if fixed:  # whole chunks only: a fixed-batch artifact is not resized at all
        n = int(next(iter(feeds.values())).shape[0]) // fixed * fixed
        feeds, ref_out = {k: v[:n] for k, v in feeds.items()}, {k: v[:n] for k, v in ref_out.items()}
    checks: dict = {}
    runs: list[OtherRun] = []
    for b in RESIZE_BATCHES:
        try:
            if fixed and b != fixed:
                runner.run_resized({k: v[:b] for k, v in feeds.items()}, b, strict=True)
                checks[str(b)] = {"passed": False, "note": f"fixed batch {fixed} accepted a strict resize"}
                runs.append(OtherRun(f"fixed batch {fixed}", error=f"a strict resize to batch {b} was accepted"))
                continue
            got = runner.run_resized(feeds, b)
        except Exception as e:  # noqa: BLE001 - a refusal is expected only for fixed-batch artifacts
            if fixed and b != fixed:
                checks[str(b)] = {"passed": True, "note": f"fixed batch {fixed}: strict resize refused"}
            else:
                checks[str(b)] = {"passed": False, "note": f"{type(e).__name__}: {str(e).strip()[:200]}"}
                runs.append(OtherRun(f"batch {b} through resize_tensor_input", error=f"failed: {checks[str(b)]['note']}"))
            continue
        c = compare(ref_out, got, gate)
        checks[str(b)] = {"passed": c.passed, **c.headline()}
        runs.append(OtherRun(f"at batch {b} through resize_tensor_input", comparison=c))
    return checks, runs


def _unstage(plan: OutputPlan, outdir: Path, fmt: FormatSpec, name: str) -> None:
    """Drop whatever a format that errored staged (its earlier files are pruned at commit)."""
    for failed in (False, True):
        remove_path(plan.staged(outdir / (fmt.failed_name(name) if failed else fmt.artifact_name(name))))
        remove_path(plan.staged(outdir / golden_name(fmt, name, failed=failed)))


def _replace_work_dir(options: ExportOptions, work: Path, config: ExportConfig) -> ExportOptions:
    from dataclasses import replace

    return replace(options, work_dir=work, tol=config.tol, fp16_io=config.fp16_io)


def _worse(a: Comparison, b: Comparison) -> bool:
    if a.passed != b.passed:
        return not a.passed
    ha, hb = a.headline(), b.headline()
    return (ha.get("cosine_mean", 1.0), -ha.get("max_abs_diff", 0.0)) < (hb.get("cosine_mean", 1.0), -hb.get("max_abs_diff", 0.0))


# ----------------------------------------------------------------------------------------- the Python API

#: a ``.keras`` audio model exported without ``formats``: the ``quantization`` choice -> its format (seed 001)
KERAS_QUANTIZATION_FORMATS = {"ptq": "tflite_int8_full", "dynamic": "tflite_int8"}
#: ``ExportOptions`` fields the pipeline sets from ``ExportConfig`` (export()'s own keywords)
_PIPELINE_OPTIONS = ("tol", "fp16_io", "device")


def default_formats(framework: str, *, formats: Sequence[str] | None = None, quantization: str = "ptq",
                    export_onnx: bool = False) -> tuple[str, ...]:
    """The formats of an export: ``formats`` when given, else ``onnx_fp16`` (a ``.keras`` source: the format of
    ``quantization``); ``export_onnx`` adds ``onnx``."""
    if quantization not in KERAS_QUANTIZATION_FORMATS:
        raise ConfigError(f"quantization must be {' or '.join(KERAS_QUANTIZATION_FORMATS)}, got '{quantization}'")
    if formats:
        out = list(formats)
    elif framework == "keras":
        out = [KERAS_QUANTIZATION_FORMATS[quantization]]
    else:
        out = list(DEFAULT_FORMATS)
    if export_onnx and "onnx" not in out and "all" not in out:
        out.append("onnx")
    return tuple(out)


def check_values(**values) -> None:
    """Ranges and files of the export's values before any model is loaded (one line naming the flag). Keys are
    the ``export()`` keyword names; a value of ``None`` is not checked."""
    lows = {"validate_samples": 1, "num_samples": 1, "calibration_samples": 1, "reference_rows": 2,
            "batch_validate": 0, "tflite_batch": 1, "opset": 7}
    for key, low in lows.items():
        v = values.get(key)
        if v is not None and v < low:
            raise ConfigError(f"{_flag(key)} must be at least {low}, got {v}")
    for key in ("tol", "snr_threshold"):
        v = values.get(key)
        if v is not None and not v >= 0:
            raise ConfigError(f"{_flag(key)} must be >= 0, got {v}")
    cos = values.get("min_cosine_sim")
    if cos is not None and not 0.0 <= cos <= 1.0:
        raise ConfigError(f"--min-cosine-sim is a cosine similarity gate in [0, 1], got {cos:g}")
    for key in ("reference_inputs", "calibration_inputs"):
        if values.get(key) is not None:
            read_npz(values[key], _flag(key))
    if values.get("model_config") is not None and not Path(values["model_config"]).is_file():
        raise ConfigError(f"--model-config file not found: {values['model_config']}")
    data = values.get("data_path")
    if data is not None and not Path(data).is_dir():
        raise ConfigError(f"--data-path-train {data} is not a folder")


def _flag(key: str) -> str:
    return "--data-path-train" if key == "data_path" else "--" + key.replace("_", "-")


def split_output_path(output_path: str | Path, outdir: str | Path | None, name: str | None) -> tuple[Path, str]:
    """``DIR/X_quantized.tflite`` (the seed's ``--output_path``) -> (DIR, X), checked against ``outdir`` and
    ``name`` when those are given too."""
    p = Path(output_path)
    suffix = FORMATS.get("tflite_int8_full").suffix + ".tflite"
    if not p.name.endswith(suffix) or len(p.name) == len(suffix):
        raise ConfigError(f"--output-path must name the full-INT8 artifact X{suffix}, got '{p.name}'")
    stem = p.name[: -len(suffix)]
    if outdir and Path(outdir) != p.parent:
        raise ConfigError(f"--output-path {p} and --outdir {outdir} disagree; pass one")
    if name and name != stem:
        raise ConfigError(f"--output-path {p} and --name {name} disagree; pass one")
    return p.parent, stem


def export(
    source,
    *,
    formats: Sequence[str] | None = None,
    outdir: str | Path | None = None,
    data_path: str | Path | None = None,
    model_config: str | Path | None = None,
    family: str | None = None,
    output_path: str | Path | None = None,
    name: str | None = None,
    factory=None,
    wrapper=None,
    trust_source: bool = False,
    input_shapes=(),
    output_names=(),
    input_ranges=None,
    quantization: str = "ptq",
    export_onnx: bool = False,
    num_samples: int | None = None,
    validate_samples: int | None = None,
    snr_threshold: float | None = None,
    calibration_samples: int = 256,
    reference_rows: int = 200,
    gates: dict | None = None,
    min_cosine_sim: float | None = None,
    report_json: str | Path | None = None,
    progress: bool = True,
    options: ExportOptions | dict | None = None,
    **config,
) -> ExportResult:
    """Everything ``edgeport export`` does, as one call: load ``source`` (a torch checkpoint with its family or
    ``factory``, a ``.pt2``, an ``nn.Module``, a ``.keras`` with its ``X_model_config.json``), export it to
    ``formats`` in ``outdir`` and validate each artifact against it (docs/python-api.md).

    ``formats``: default ``onnx_fp16``; for a ``.keras`` source the format of ``quantization`` (``ptq`` ->
    ``tflite_int8_full``, ``dynamic`` -> ``tflite_int8``), plus ``onnx`` with ``export_onnx``. ``data_path``:
    a labelled audio folder, the representative dataset (``num_samples`` centre chunks, near-silent ones below
    ``snr_threshold`` skipped) and ``validate_samples`` held-out validation chunks of a ``.keras`` audio model;
    with ``family="hierarchy"`` the image folder of the species + disease deliverables (``options``: that
    family's keywords, e.g. ``heads_attr``, ``labels``). ``gates``: ``{format: {metric: value}}`` overrides;
    ``min_cosine_sim`` the ``tflite_int8_full`` cosine gate. ``options``: exporter options (``opset``,
    ``per_tensor``, ``calibration_method``, ``tflite_batch``, ``tflite_route``, ``float_frontend``,
    ``npu_check``, ``int8_route``). Other keywords are ``ExportConfig`` fields (``force``, ``tol``, ``device``,
    ``seed``, ``reference_inputs``, ``calibration_inputs``, ``golden_rows``, ``license_file``, ...).

    Bad input raises an ``EdgeportError`` (``exit_code`` 2) before any work; an artifact that misses its gate
    is kept as ``<name>.failed.<ext>`` and ``result.passed`` is False.
    """
    from edgeport.sources.keras import NUM_SAMPLES, VALIDATE_SAMPLES

    num_samples = NUM_SAMPLES if num_samples is None else num_samples
    validate_samples = VALIDATE_SAMPLES if validate_samples is None else validate_samples
    if not isinstance(options, ExportOptions):
        options = dict(options or {})
    if family is not None:
        return _export_family_folder(family, source, formats=formats, outdir=outdir, data_path=data_path,
                                     name=name, factory=factory, trust_source=trust_source, gates=gates,
                                     calibration_samples=calibration_samples, options=options, **config)
    if output_path is not None:
        outdir, name = split_output_path(output_path, outdir, name)
    check_values(num_samples=num_samples, validate_samples=validate_samples, snr_threshold=snr_threshold,
                 calibration_samples=calibration_samples, reference_rows=reference_rows,
                 min_cosine_sim=min_cosine_sim, model_config=model_config, data_path=data_path,
                 **{k: config.get(k) for k in ("tol", "batch_validate", "reference_inputs", "calibration_inputs")},
                 **{k: getattr(options, k) if isinstance(options, ExportOptions) else options.get(k)
                    for k in ("tflite_batch", "opset")})
    gates = _gate_overrides(gates, min_cosine_sim)
    given_options = isinstance(options, ExportOptions)
    if not given_options and "calibration_samples" in options:
        raise ConfigError("calibration_samples: pass it to export() itself, not in options")
    options = options if given_options else export_options(calibration_samples=calibration_samples, **options)
    report_plan = OutputPlan(force=bool(config.get("force")),
                             hint="pass --force to replace it or choose another --report-json")
    if report_json is not None:
        report_plan.add(report_json)
        report_plan.check()
    with report_plan:
        from edgeport.sources import load_source

        handle = load_source(source, factory=factory, wrapper=wrapper, trust_source=trust_source,
                             input_shapes=tuple(input_shapes), output_names=tuple(output_names), name=name,
                             model_config=model_config, input_ranges=input_ranges)
        audio = handle.framework == "keras" and handle.family == "audio"
        cfg = ExportConfig(
            formats=default_formats(handle.framework, formats=formats, quantization=quantization,
                                    export_onnx=export_onnx),
            outdir=Path(outdir or "exports"), reference_rows=validate_samples if audio else reference_rows,
            gate_overrides=gates,
            options=replace(options, calibration_samples=num_samples) if audio and not given_options else options,
            **config)
        if audio:
            _attach_audio(handle, cfg, data_path, num_samples=num_samples, validate_samples=validate_samples,
                          snr_threshold=snr_threshold, progress=progress)
        elif data_path is not None:
            raise ConfigError("--data-path-train applies to audio models (.keras with its X_model_config.json) "
                              "and to --family hierarchy")
        result = export_handle(handle, cfg)
        if report_json is not None:
            _write_report_json(report_plan.staged(report_json), result)
            report_plan.commit()
    return result


def export_options(**options) -> ExportOptions:
    """``ExportOptions`` from flat keywords (its field names), refusing the ones ``export()`` sets itself."""
    known = {f.name for f in fields(ExportOptions)} - {"work_dir", *_PIPELINE_OPTIONS}
    given = sorted(set(options) & set(_PIPELINE_OPTIONS))
    if given:
        raise ConfigError(f"{', '.join(given)}: pass {'it' if len(given) == 1 else 'them'} to export() itself, "
                          "not in options (the gates read them too)")
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown export option(s) {unknown}; known: {', '.join(sorted(known))}")
    return ExportOptions(**options)


def _gate_overrides(gates: dict | None, min_cosine_sim: float | None) -> dict:
    from edgeport.exporters import check_gate_overrides

    out = {k: dict(v) for k, v in (gates or {}).items()}
    if min_cosine_sim is not None:
        out.setdefault("tflite_int8_full", {})["min_cosine"] = min_cosine_sim
    check_gate_overrides(out, "--min-cosine-sim / --gate")
    return out


def _attach_audio(handle: ModelHandle, cfg: ExportConfig, data_path, **data) -> None:
    """A ``.keras`` audio model: calibration and held-out validation chunks from ``data_path``, after every
    check that needs no audio (a ptq export without data is refused first)."""
    from edgeport.sources.keras import attach_audio_data

    if data_path is None and cfg.calibration_inputs is None and "tflite_int8_full" in cfg.formats:
        raise ConfigError("tflite_int8_full (--quantization ptq) needs calibration data: pass --data-path-train "
                          "FOLDER (labelled audio), or use --quantization dynamic")
    check_before_work(handle, cfg)  # before the audio is read
    attach_audio_data(handle, data_path, **data)


def _write_report_json(path: Path, result: ExportResult) -> None:
    """The structured conversion report (seed 001's ``--report_json``)."""
    from edgeport.fileio import atomic_write_json

    handle = result.handle
    atomic_write_json(path, {
        "source": str(handle.source_path) if handle.source_path else None,
        "all_passed": result.passed,
        "reference_inputs": result.reference_summary,
        "calibration": handle.notes.get("calibration"),
        "artifacts": [a.to_dict(result.outdir) for a in result.artifacts],
    })


def _export_family_folder(name: str, source, *, options, **kw):
    """A family that writes its own deliverables folder (its ``export_folder`` hook, e.g. ``hierarchy``)."""
    from dataclasses import asdict

    from edgeport.families import FAMILIES

    family = FAMILIES.get(name)
    if not family.has("export_folder"):
        folders = [n for n, f in FAMILIES.items() if f.has("export_folder")]
        raise ConfigError(f"family '{name}': export() takes family={' or '.join(map(repr, folders))} (other families "
                          "are found from the source)")
    if isinstance(options, ExportOptions):
        options = {k: v for k, v in asdict(options).items() if k in ("opset", "per_tensor", "calibration_method")}
    return family.export_folder(source, **kw, **options)


class _CallableModule(types.ModuleType):
    """``edgeport.export`` is this module once it is imported (Python binds a package's submodules as its
    attributes); calling it calls ``export()``, so ``edgeport.export(...)`` works either way."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

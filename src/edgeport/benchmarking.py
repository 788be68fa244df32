"""``edgeport bench``: every artifact of a folder timed and compared with its source on the same inputs.

A folder is an export folder (its ``manifest.json`` lists the artifacts, its golden reference file holds the
inputs and the source model's outputs on them) or any folder of ``.onnx`` / ``.tflite`` files benchmarked
against ``--reference MODEL``. Per artifact: size on disk, wall-clock latency per call at batch 1 and at
``--batch`` rows (p50/p90 over ``--repeats`` timed runs after ``--warmup`` untimed ones, ``--threads``
runtime threads), agreement with the reference through the one comparator (``validation.compare``), and the
task metric when the inputs come with labels. Outputs: ``bench.json`` (strict JSON), ``bench.png`` (size vs
latency vs fidelity) and the folder's ``report.html``, all through one ``fileio.OutputPlan``.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from edgeport.errors import (
    ConfigError,
    EdgeportError,
    MissingDependencyError,
    SourceError,
)
from edgeport.fileio import OutputPlan, path_size, read_json, strict_json
from edgeport.reporting.bench_table import (
    BENCH_JSON,
    BENCH_PLOT,
)
from edgeport.sources.inputs import random_feeds
from edgeport.validation import Comparison, Gate, compare

log = logging.getLogger(__name__)

#: files a folder without a manifest contributes
ARTIFACT_SUFFIXES = (".onnx", ".tflite")
#: the array of an inputs ``.npz`` that holds task labels: (rows,) class indices or (rows, classes) 0/1
LABELS_KEY = "labels"


@dataclass(frozen=True)
class BenchConfig:
    """What ``bench_folder`` measures (the CLI's flags, checked once)."""

    batch: int = 32
    threads: int = 1
    repeats: int = 20
    warmup: int = 3
    reference: Path | None = None
    reference_inputs: Path | None = None
    rows: int = 200  # seeded random rows, when neither the folder nor --reference-inputs gives inputs
    seed: int = 0
    trust_source: bool = False

    def __post_init__(self) -> None:
        for name, low in (("batch", 1), ("threads", 1), ("repeats", 2), ("warmup", 0), ("rows", 2)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name} must be >= {low}, got {getattr(self, name)}")


@dataclass
class ArtifactBench:
    """One row of the bench table."""

    name: str  # the export format, or the file name in a folder without a manifest
    file: str
    runtime: str
    role: str = "artifact"  # "artifact" | "reference"
    export_status: str | None = None  # the manifest's status (passed / failed / error), None without one
    size_bytes: int | None = None
    latency: dict = field(default_factory=dict)  # batch_1 / batched: {batch, p50_ms, p90_ms, mean_ms, per_row_ms}
    agreement: dict | None = None  # Comparison.to_dict() against the reference, on the bench inputs
    headline: dict = field(default_factory=dict)  # the comparator's worst-over-outputs figures
    task: dict | None = None  # {metric, value, output, reference_value, drop_points}
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class BenchResult:
    folder: Path
    kind: str  # "export folder" | "artifact folder"
    settings: dict
    inputs: dict
    reference: dict
    artifacts: list[ArtifactBench]
    skipped: list[dict] = field(default_factory=list)  # manifest artifacts with no file to run, and why

    @property
    def exit_code(self) -> int:
        return 1 if any(a.error for a in self.artifacts) else 0

    def to_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "kind": self.kind,
            "settings": self.settings,
            "inputs": self.inputs,
            "reference": self.reference,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "skipped": self.skipped,
        }


# ------------------------------------------------------------------------------------------- reading


@dataclass
class _Entry:
    name: str
    path: Path
    runtime: str
    gate: Gate
    export_status: str | None = None


def _gate_of(art: dict) -> Gate:
    """The gate an export judged the artifact with (its --gate / --tol included), else the format's default."""
    recorded = (art.get("validation") or {}).get("gate")
    known = {f.name for f in fields(Gate)} - {"max_abs_diff_tol"}
    if isinstance(recorded, dict):
        return Gate(**{k: v for k, v in recorded.items() if k in known})
    from edgeport.exporters import FORMATS, gate_for

    return gate_for(art["format"]) if art.get("format") in FORMATS else Gate()


def _runtime_of(name: str | None, path: Path) -> str:
    from edgeport.exporters import FORMATS
    from edgeport.runtimes import runtime_for_path

    return FORMATS.get(name).runtime if name in FORMATS else runtime_for_path(path)


def _manifest_entries(folder: Path, manifest: dict) -> tuple[list[_Entry], list[dict]]:
    entries, skipped = [], []
    for art in manifest.get("artifacts") or []:
        name = str(art.get("format") or art.get("file"))
        if not art.get("file"):
            skipped.append({"name": name, "status": art.get("status"),
                            "reason": art.get("error") or "the export wrote no file"})
            continue
        path = folder / art["file"]
        if not path.exists():
            skipped.append({"name": name, "status": art.get("status"), "file": art["file"],
                            "reason": f"{art['file']} is listed in manifest.json but not in the folder"})
            continue
        entries.append(_Entry(name, path, _runtime_of(art.get("format"), path), _gate_of(art), art.get("status")))
    return entries, skipped


def _loose_entries(folder: Path, exclude: Path | None) -> list[_Entry]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ARTIFACT_SUFFIXES)
    if exclude is not None:
        files = [p for p in files if p.resolve() != exclude.resolve()]
    return [_Entry(p.name, p, _runtime_of(None, p), Gate()) for p in files]


def open_reference(path: Path, *, threads: int, trust_source: bool = False):
    """A runner for ``--reference``: an artifact (.onnx, .tflite, .keras, SavedModel folder) in its runtime, or a
    PyTorch checkpoint / ``.pt2`` loaded as ``edgeport export`` loads it."""
    from edgeport.runtimes import open_runner, runner_class, runtime_for_path
    from edgeport.sources.torch import CHECKPOINT_SUFFIXES

    path = Path(path)
    if not path.exists():
        raise SourceError(f"--reference {path}: no such file or folder; give the model the artifacts were made from")
    if path.suffix.lower() in (*CHECKPOINT_SUFFIXES, ".pt2"):
        import torch

        from edgeport.sources import load_source

        torch.set_num_threads(threads)
        return runner_class("torch").from_handle(load_source(path, trust_source=trust_source))
    runtime = runtime_for_path(path)
    return open_runner(runtime, path, **({"trust_source": trust_source} if runtime == "keras" else {"threads": threads}))


def _split_labels(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    arrays = dict(arrays)
    return arrays, arrays.pop(LABELS_KEY, None)


def _rows(feeds: dict[str, np.ndarray]) -> int:
    return int(next(iter(feeds.values())).shape[0])


def _golden(folder: Path, manifest: dict) -> dict | None:
    name = (manifest.get("reference_inputs") or {}).get("golden_file")
    if not name or not (folder / name).is_file():
        return None
    from edgeport.export import read_npz

    arrays = read_npz(folder / name, "the folder's golden file")
    return {
        "file": name,
        "inputs": {k.removeprefix("input__"): v for k, v in arrays.items() if k.startswith("input__")},
        "reference": {k.removeprefix("reference__"): v for k, v in arrays.items() if k.startswith("reference__")},
        "labels": arrays.get(LABELS_KEY),
    }


# ------------------------------------------------------------------------------------------- measuring


def _latency_ms(runner, feeds: dict[str, np.ndarray], rows: int, config: BenchConfig) -> dict:
    t = runner.latency(feeds, repeats=config.repeats, warmup=config.warmup)
    out = {"batch": rows, **{k.replace("_s", "_ms"): v * 1e3 for k, v in t.items()}}
    out["per_row_ms"] = out["p50_ms"] / rows
    return out


def measure_latency(runner, feeds: dict[str, np.ndarray], config: BenchConfig) -> tuple[dict, list[str]]:
    """p50/p90/mean ms per call at batch 1 and at ``config.batch`` rows (the bench rows repeated as needed);
    a fixed-batch artifact is timed at its own batch, and says so."""
    n = _rows(feeds)
    notes = []
    batch = config.batch
    if runner.fixed_batch and runner.fixed_batch != batch:
        notes.append(f"fixed batch {runner.fixed_batch}: batched latency measured at {runner.fixed_batch} rows, "
                     f"not {batch}; batch 1 is one row padded to {runner.fixed_batch}")
        batch = runner.fixed_batch
    idx = np.arange(batch) % n
    return {
        "batch_1": _latency_ms(runner, {k: v[:1] for k, v in feeds.items()}, 1, config),
        "batched": _latency_ms(runner, {k: v[idx] for k, v in feeds.items()}, batch, config),
    }, notes


def task_metric(labels: np.ndarray | None, outputs: dict[str, np.ndarray]) -> dict | None:
    """Top-1 accuracy for (rows,) class indices, macro ROC-AUC for (rows, classes) 0/1 labels, on the first
    output they fit; None without labels."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    for name, out in outputs.items():
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[0] != labels.shape[0]:
            continue
        ok = np.all(np.isfinite(out), axis=1)
        if labels.ndim == 1 and labels.dtype.kind in "iu" and labels.max(initial=0) < out.shape[1]:
            value = float(np.mean(np.argmax(out[ok], axis=1) == labels[ok])) if ok.any() else None
            return {"metric": "top1_accuracy", "value": value, "output": name, "rows": int(ok.sum())}
        if labels.ndim == 2 and labels.shape[1] == out.shape[1]:
            from edgeport.evaluation.metrics import _mean_or_none, roc_auc

            value = _mean_or_none(roc_auc(labels[ok], out[ok])) if ok.any() else None
            return {"metric": "roc_auc_macro", "value": value, "output": name, "rows": int(ok.sum())}
    raise ConfigError(f"labels of shape {labels.shape} fit no output (outputs: "
                      f"{ {k: tuple(np.shape(v)) for k, v in outputs.items()} }); give (rows,) class indices or "
                      "(rows, classes) 0/1 labels for one output")


def _align(reference: dict, got: dict) -> tuple[dict, list[str]]:
    """Outputs by the reference's names; an artifact whose names differ but whose count matches is mapped by
    position (said in the notes)."""
    if set(reference) <= set(got) or len(reference) != len(got):
        return got, []
    mapped = dict(zip(reference, got.values(), strict=True))
    return mapped, [f"outputs {list(got)} mapped by position to the reference's {list(reference)}"]


def _bench_one(entry: _Entry, inputs, ref_out, labels, ref_task, config: BenchConfig) -> ArtifactBench:
    from edgeport.runtimes import open_runner

    row = ArtifactBench(name=entry.name, file=entry.path.name, runtime=entry.runtime,
                        export_status=entry.export_status)
    try:
        row.size_bytes = path_size(entry.path)
        runner = open_runner(entry.runtime, entry.path, threads=config.threads)
        row.notes += _thread_notes(entry.runtime, config.threads)
        # every row in one call (as the export's golden run): dynamic INT8 quantizes per batch
        got, failed = runner.run(inputs, batch_size=_rows(inputs))
        got, aligned = _align(ref_out, got)
        row.notes += aligned
        cmp: Comparison = compare(ref_out, got, entry.gate, failed=failed)
        row.agreement, row.headline = cmp.to_dict(), cmp.headline()
        row.latency, notes = measure_latency(runner, inputs, config)
        row.notes += notes
        ran = ~failed
        row.task = _with_drop(task_metric(labels[ran], {k: v[ran] for k, v in got.items()}) if labels is not None
                              and ran.any() else None, ref_task)
        if row.task is not None and failed.any():
            row.notes.append(f"task metric on the {int((~failed).sum())} rows that ran")
    except EdgeportError as e:
        row.error = str(e)
    except Exception as e:
        row.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
        log.debug("bench %s failed", entry.name, exc_info=True)
    return row


def _thread_notes(runtime: str, threads: int) -> list[str]:
    """TensorFlow takes its thread count once per process: say so when it was set before this bench."""
    if runtime != "tf":
        return []
    import tensorflow as tf

    got = tf.config.threading.get_intra_op_parallelism_threads()
    if got == threads:
        return []
    shown = "all cores" if got == 0 else str(got)
    return [f"TensorFlow was initialised earlier in this process: it runs with {shown} intra-op threads, not "
            f"{threads} (run edgeport bench in a fresh process)"]


def _with_drop(task: dict | None, ref_task: dict | None) -> dict | None:
    if task is None:
        return None
    ref = (ref_task or {}).get("value")
    task["reference_value"] = ref
    task["drop_points"] = None if ref is None or task["value"] is None else 100.0 * (ref - task["value"])
    return task


def _settings(config: BenchConfig) -> dict:
    from edgeport.reporting.manifest import framework_versions

    return {"batch": config.batch, "threads": config.threads, "repeats": config.repeats, "warmup": config.warmup,
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor() or None,
            "versions": framework_versions()}


def bench_folder(folder: Path | str, config: BenchConfig = BenchConfig()) -> BenchResult:
    """Bench every artifact of ``folder`` (see the module docstring)."""
    folder = Path(folder)
    if not folder.exists():
        raise SourceError(f"{folder}: no such folder; give an export folder or a folder of .onnx/.tflite files")
    if not folder.is_dir():
        raise SourceError(f"{folder} is a file; give its folder (an export folder or a folder of .onnx/.tflite files)")
    manifest = read_json(folder / "manifest.json", "manifest") if (folder / "manifest.json").is_file() else None
    if manifest is None and config.reference is None:
        raise ConfigError(f"{folder} has no manifest.json: pass --reference MODEL (the model the artifacts were made "
                          "from) to bench a folder of .onnx/.tflite files")
    if manifest is not None:
        entries, skipped = _manifest_entries(folder, manifest)
    else:
        entries, skipped = _loose_entries(folder, config.reference), []
    if not entries and not skipped:
        raise SourceError(f"{folder} holds no artifact to bench (.onnx, .tflite, or an export's manifest.json)")

    if config.reference is None and config.reference_inputs is not None:
        raise ConfigError("--reference-inputs needs --reference MODEL: the folder's stored source outputs belong to "
                          "its own golden inputs")
    golden = _golden(folder, manifest) if manifest is not None else None
    reference_runner = None
    if config.reference is not None:
        reference_runner = open_reference(config.reference, threads=config.threads, trust_source=config.trust_source)
    if config.reference_inputs is not None:
        from edgeport.export import read_npz

        inputs, labels = _split_labels(read_npz(Path(config.reference_inputs), "--reference-inputs"))
        inputs_info = {"source": str(config.reference_inputs)}
    elif golden is not None:
        inputs, labels = golden["inputs"], golden["labels"]
        inputs_info = {"source": f"golden file {golden['file']} (the export's reference inputs)"}
    elif reference_runner is not None:
        inputs, labels = random_feeds(reference_runner.inputs, config.rows, config.seed, default_dim=1), None
        inputs_info = {"source": f"seeded N(0,1) inputs shaped from the reference (seed {config.seed}); pass "
                                 "--reference-inputs FILE.npz with realistic inputs"}
    else:
        raise ConfigError(f"{folder} has no golden reference file: pass --reference MODEL (and --reference-inputs "
                          "FILE.npz) to say what the artifacts are compared with")
    inputs_info["rows"] = _rows(inputs)
    inputs_info["labels"] = None if labels is None else list(np.shape(labels))

    if reference_runner is not None:
        ref_out, failed = reference_runner.run(inputs, batch_size=_rows(inputs))
        if failed.any():
            raise SourceError(f"the reference {config.reference} failed on {int(failed.sum())} of {failed.size} "
                              "inputs; check that --reference-inputs has one array per reference input")
        reference = {"source": str(config.reference), "kind": "model run on the bench inputs",
                     "runtime": reference_runner.name}
    else:
        ref_out = golden["reference"]
        src = (manifest or {}).get("source") or {}
        reference = {"source": src.get("path") or f"the source model of {manifest.get('model_name')}",
                     "kind": "source outputs stored at export (golden file)", "runtime": None}
    ref_task = task_metric(labels, ref_out)
    reference["task"] = ref_task

    rows: list[ArtifactBench] = []
    if reference_runner is not None:
        ref_row = ArtifactBench(name="reference", file=Path(config.reference).name, runtime=reference_runner.name,
                                role="reference", size_bytes=path_size(Path(config.reference)), task=ref_task)
        ref_row.latency, ref_row.notes = measure_latency(reference_runner, inputs, config)
        rows.append(ref_row)
    for i, entry in enumerate(entries, 1):
        log.info("[%d/%d] bench %s ...", i, len(entries), entry.name)
        rows.append(_bench_one(entry, inputs, ref_out, labels, ref_task, config))
    return BenchResult(folder=folder, kind="export folder" if manifest is not None else "artifact folder",
                       settings=_settings(config), inputs=inputs_info, reference=reference, artifacts=rows,
                       skipped=skipped)


# ------------------------------------------------------------------------------------------- printing


# ------------------------------------------------------------------------------------------- plots


def bench_plot_png(result: BenchResult | dict) -> bytes:
    """Two panels: size vs latency at batch 1 (colour: max abs diff vs the reference), and size vs max abs diff."""
    try:
        from edgeport.evaluation.report import _figure, _png
    except ImportError:  # pragma: no cover - evaluation.report imports only numpy and edgeport
        raise MissingDependencyError("matplotlib", "Bench plots", "report") from None
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter

    d = result.to_dict() if isinstance(result, BenchResult) else result
    ok = [a for a in d["artifacts"] if not a.get("error") and a.get("latency") and a.get("size_bytes")]
    arts = [(a["name"], a["size_bytes"] / 1024, a["latency"]["batch_1"]["p50_ms"],
             max((a.get("headline") or {}).get("max_abs_diff") or 0.0, 1e-9)) for a in ok if a["role"] == "artifact"]
    fig = _figure((11, 4.5))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    fig.subplots_adjust(wspace=0.5)
    for a in ok:
        if a["role"] == "reference":  # the reference: a red star, no fidelity of its own
            x, y = a["size_bytes"] / 1024, a["latency"]["batch_1"]["p50_ms"]
            ax1.scatter([x], [y], marker="*", s=160, c="#b00020")
            ax1.annotate(f"{a['name']} ({a['runtime']})", (x, y), textcoords="offset points", xytext=(5, 4),
                         fontsize=8)
    if arts:
        names, size, lat, diff = zip(*arts, strict=True)
        norm = LogNorm(vmin=min(diff), vmax=max(max(diff), min(diff) * 10))
        sc = ax1.scatter(size, lat, c=diff, cmap="viridis_r", norm=norm, s=60, edgecolors="k")
        fig.colorbar(sc, ax=ax1, label="max abs diff vs reference")
        ax2.scatter(size, diff, c="#2b5f9e", s=60)
        for n, x, y, z in zip(names, size, lat, diff, strict=True):
            ax1.annotate(n, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
            ax2.annotate(n, (x, z), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax2.set_yscale("log")
    ax1.set_yscale("log")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
            axis(FuncFormatter(lambda v, _pos: f"{v:g}"))
    s = d["settings"]
    ax1.set_xlabel("size (KB)")
    ax1.set_ylabel(f"latency p50 at batch 1 (ms, {s['threads']} thread(s))")
    ax1.set_title("size vs latency (colour: fidelity)", fontsize=10)
    ax2.set_xlabel("size (KB)")
    ax2.set_ylabel("max abs diff vs reference")
    ax2.set_title("size vs fidelity", fontsize=10)
    return _png(fig)


# ------------------------------------------------------------------------------------------- writing


def write_bench(result: BenchResult, outdir: Path | str | None = None, *, force: bool = False,
                plots: bool = True) -> dict[str, Path]:
    """``bench.json``, ``bench.png`` and ``report.html`` into ``outdir`` (default: the benched folder), planned
    and checked before anything is written (an earlier bench needs ``force``; a report.html edgeport wrote is
    replaced), moved into place together."""
    from edgeport.reporting.folder import REPORT, plan_report, render_folder_report

    outdir = Path(outdir) if outdir is not None else result.folder
    names = {"json": outdir / BENCH_JSON, "plot": outdir / BENCH_PLOT, "report": outdir / REPORT}
    plan = OutputPlan(force=force, what="an earlier bench", hint="pass --force to replace it or choose another --outdir")
    for p in names.values():
        plan.add(p)
    plan_report(plan, names["report"], force=force)
    data = result.to_dict()
    png = None
    if plots:
        try:
            png = bench_plot_png(data)
        except MissingDependencyError as e:
            log.warning("%s; bench.png skipped", e)
    with plan:
        plan.staged(names["json"]).write_text(strict_json(data), encoding="utf-8")
        if png is not None:
            plan.staged(names["plot"]).write_bytes(png)
        plan.staged(names["report"]).write_text(
            render_folder_report([result.folder], bench={result.folder: (data, png)}), encoding="utf-8")
        plan.commit(prune=True)  # a rerun with --no-plots drops the earlier plot
    return {k: p for k, p in names.items() if k != "plot" or png is not None}

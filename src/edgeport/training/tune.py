"""Optuna search over the DS-CNN options of seed 004, on one process or many machines sharing a database.

Every worker runs the same loop on the same ``storage`` and ``study_name``: while the study holds fewer than
``n_trials`` trials (every state counts: complete, pruned, failed, running; not enqueued ones waiting to start), ask for a trial, train it in its
own folder (``<outdir>/trial_NNNN/``) and report its validation ROC-AUC per epoch to a ``MedianPruner``.
The storage runs a heartbeat for each running trial; a worker that dies leaves a trial whose heartbeat goes
stale, and the next worker to start a trial (or ``--status``) marks it failed, so no trial stays running.
A trial that raises (a bad combination, out of memory, a conversion that misses its gate) is recorded
failed with its reason (user attribute ``fail_reason``) and the study goes on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeport.errors import ConfigError, EdgeportError
from edgeport.training.config import TrainConfig

log = logging.getLogger(__name__)

OBJECTIVES = ("float", "int8")
DEFAULT_STUDY = "edgeport-dscnn"
STUDY_DB = "study.db"

#: The search space (seed 004's tuner): name -> (kind, choices or (low, high)). Conditional parameters are
#: drawn only when their switch is on (weight decay for adamw, SE reduction with SE, expansion with
#: inverted residuals).
SEARCH_SPACE: dict[str, tuple] = {
    "alpha": ("categorical", (0.25, 0.5, 0.75, 1.0)),
    "depth_multiplier": ("categorical", (1, 2)),
    "embeddings_size": ("categorical", (64, 128, 256, 512)),
    "learning_rate": ("log", (1e-4, 1e-2)),
    "dropout": ("float", (0.0, 0.5)),
    "batch_size": ("categorical", (16, 32, 64)),
    "mixup_alpha": ("float", (0.0, 0.5)),
    "label_smoothing": ("float", (0.0, 0.2)),
    "optimizer": ("categorical", ("adam", "sgd", "adamw")),
    "weight_decay": ("log", (1e-6, 1e-2)),
    "grad_clip": ("categorical", (0.0, 0.5, 1.0, 2.0, 5.0)),
    "use_se": ("categorical", (True, False)),
    "se_reduction": ("categorical", (4, 8, 16)),
    "use_inverted_residual": ("categorical", (True, False)),
    "expansion_factor": ("categorical", (2, 3, 4)),
    "use_attention_pooling": ("categorical", (False, True)),
}
_CONDITIONAL = {"weight_decay": ("optimizer", "adamw"), "se_reduction": ("use_se", True),
                "expansion_factor": ("use_inverted_residual", True)}
#: TrainConfig fields that may differ between the workers of one study (where things go, how fast).
_LOCAL_FIELDS = ("checkpoint_path", "num_workers", "cache_dir", "cache_memory_mb", "progress")


@dataclass(frozen=True)
class TuneConfig:
    """``edgeport tune``: the fixed training options (``base``) and how the study runs."""

    base: TrainConfig
    outdir: Path = Path("tune_out")
    study_name: str = DEFAULT_STUDY
    storage: str | None = None             # SQLAlchemy URL; None: sqlite:///<outdir>/study.db
    n_trials: int = 20
    timeout: float | None = None           # seconds; a running trial is finished, not cut
    objective: str = "float"
    heartbeat_interval: int = 60           # seconds; a trial is failed after 2 intervals without one
    calibration_samples: int = 256         # int8 objective: representative rows for the conversion
    validate_samples: int = 64             # int8 objective: held-out rows for the conversion's gates

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective must be one of {list(OBJECTIVES)}, got '{self.objective}'")
        if self.n_trials <= 0:
            raise ConfigError(f"--n-trials must be positive, got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        if self.heartbeat_interval < 1:
            raise ConfigError(f"--heartbeat-interval must be >= 1 second, got {self.heartbeat_interval}")

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(Path(self.outdir) / STUDY_DB).resolve()}"


@dataclass
class TuneResult:
    study_name: str
    storage: str
    n_trials: int                         # trials the study holds now (every state)
    counts: dict[str, int]
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    best_config: TrainConfig | None = None
    best_model: Path | None = None
    ran_here: int = 0
    seconds: float = 0.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _optuna():
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - depends on the install
        from edgeport.errors import MissingDependencyError

        raise MissingDependencyError("optuna", "edgeport tune", "tune") from e
    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures: edgeport logs one line with the reason
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_storage(url: str, heartbeat_interval: int = 60):
    """An Optuna RDB storage with a heartbeat (SQLite: a long lock timeout, since several processes write)."""
    optuna = _optuna()
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=heartbeat_interval,
                                              grace_period=2 * heartbeat_interval,
                                              heartbeat_stale_trial_callback=_report_stale)
        except Exception as e:  # SQLAlchemy: bad URL, server down, missing driver
            text = str(e)
            # workers starting together race to create the schema of a new database: the loser retries
            if attempt < 5 and any(w in text for w in ("UNIQUE constraint", "already exists", "duplicate key")):
                time.sleep(0.5 * (attempt + 1))
                continue
            first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
            raise ConfigError(f"cannot open the study storage {_redact(url)}: {first}") from e
    raise AssertionError("unreachable")


def _redact(url: str) -> str:
    """The URL without its password (for messages)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url


def _report_stale(study, trial) -> None:
    log.warning("Trial %d (worker %s) stopped sending heartbeats: marked failed", trial.number,
                trial.user_attrs.get("worker", "?"))


def suggest(trial) -> dict:
    """Draw one point of ``SEARCH_SPACE`` (conditional parameters only when their switch is on)."""
    params: dict = {}
    for name, (kind, spec) in SEARCH_SPACE.items():
        cond = _CONDITIONAL.get(name)
        if cond is not None and params.get(cond[0]) != cond[1]:
            continue
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec))
        elif kind == "log":
            params[name] = trial.suggest_float(name, spec[0], spec[1], log=True)
        else:
            params[name] = trial.suggest_float(name, spec[0], spec[1])
    return params


def command_line_params(base: TrainConfig) -> dict:
    """The searched parameters as ``base`` sets them (the ones inside the search space), so that a study's
    first trial scores the configuration a user would train without tuning."""
    params: dict = {}
    options = base.to_dict()
    for name, (kind, spec) in SEARCH_SPACE.items():
        cond = _CONDITIONAL.get(name)
        if cond is not None and params.get(cond[0], options[cond[0]]) != cond[1]:
            continue
        v = options[name]
        if (v in spec) if kind == "categorical" else (spec[0] <= v <= spec[1]):
            params[name] = v
    return params


def trial_config(base: TrainConfig, params: dict, checkpoint: Path) -> TrainConfig:
    """The fixed options with one trial's parameters; a switched-off conditional keeps its fixed value."""
    d = {**base.to_dict(), **params, "checkpoint_path": str(checkpoint), "progress": False, "resume": False}
    if params.get("optimizer", base.optimizer) != "adamw":
        d["weight_decay"] = 0.0
    return TrainConfig.from_dict(d)


def _fixed_part(cfg: TrainConfig) -> dict:
    d = cfg.to_dict()
    for k in (*_LOCAL_FIELDS, *SEARCH_SPACE):
        d.pop(k, None)
    return d


def create_or_load_study(tc: TuneConfig, storage=None):
    optuna = _optuna()
    storage = storage or open_storage(tc.storage_url, tc.heartbeat_interval)
    study = optuna.create_study(storage=storage, study_name=tc.study_name, direction="maximize",
                                pruner=optuna.pruners.MedianPruner(), load_if_exists=True)
    fixed = _fixed_part(tc.base)
    known = study.user_attrs.get("fixed_train_options")
    if known is None:
        study.set_user_attr("fixed_train_options", fixed)
        study.set_user_attr("objective", tc.objective)
        if not study.get_trials(deepcopy=False):  # a new study: its first trial is the command line's config
            study.enqueue_trial(command_line_params(tc.base), user_attrs={"baseline": True})
    else:
        diff = sorted(k for k in set(known) | set(fixed) if known.get(k) != fixed.get(k))
        if diff:
            log.warning("This worker's fixed training options differ from the study's (%s): its trials are "
                        "not comparable with the others'", ", ".join(diff))
        if study.user_attrs.get("objective", tc.objective) != tc.objective:
            raise ConfigError(f"study '{tc.study_name}' maximises the {study.user_attrs['objective']} objective; "
                              f"this worker asked for --objective {tc.objective}")
    return study


def fail_stale(study) -> None:
    """Mark failed the running trials whose heartbeat stopped (a killed worker)."""
    _optuna().storages.fail_stale_trials(study)


def state_counts(study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def counted_trials(study) -> int:
    """Trials that count towards ``--n-trials``: every state but WAITING (enqueued, not started yet)."""
    return sum(t.state.name != "WAITING" for t in study.get_trials(deepcopy=False))


def best_trial(study):
    """The best complete trial, or None."""
    try:
        return study.best_trial
    except ValueError:
        return None


def run_study(tc: TuneConfig, *, on_trial=None) -> TuneResult:
    """This worker's share of the study (see module docstring). ``on_trial(frozen_trial, best_or_None)`` is
    called after each trial this worker finishes."""
    optuna = _optuna()
    t0 = time.time()
    outdir = Path(tc.outdir)
    from edgeport.audio.dataset import scan_dataset

    scan_dataset(tc.base.data_path_train, max_samples=tc.base.max_samples, seed=tc.base.seed)  # bad data: no trials
    outdir.mkdir(parents=True, exist_ok=True)
    study = create_or_load_study(tc)
    me = worker_id()
    ran = 0

    def objective(trial):
        return _objective(trial, tc, outdir, me, optuna)

    def callback(study, frozen):
        if on_trial is not None:
            on_trial(frozen, best_trial(study))

    while True:
        fail_stale(study)
        if counted_trials(study) >= tc.n_trials:
            break
        if tc.timeout is not None and time.time() - t0 >= tc.timeout:
            log.info("--timeout %.0f s reached", tc.timeout)
            break
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[callback], gc_after_trial=True)
        ran += 1
    fail_stale(study)
    return _finish(study, tc, outdir, ran, time.time() - t0)


def _objective(trial, tc: TuneConfig, outdir: Path, me: str, optuna) -> float:
    from edgeport.fileio import atomic_write_json
    from edgeport.training.trainer import train

    params = suggest(trial)
    tdir = outdir / f"trial_{trial.number:04d}"
    tdir.mkdir(parents=True, exist_ok=True)
    cfg = trial_config(tc.base, params, tdir / "model.keras")
    trial.set_user_attr("worker", me)
    trial.set_user_attr("dir", str(tdir.resolve()))
    atomic_write_json(tdir / "trial.json", {"number": trial.number, "study": tc.study_name, "worker": me,
                                            "params": params, "train_config": cfg.to_dict()})

    def on_epoch(row):
        v = row["val_roc_auc"]
        if math.isnan(v):
            return
        trial.report(v, row["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {row['epoch']}: validation ROC-AUC {v:.4f} below the median")

    try:
        res = train(cfg, on_epoch=on_epoch)
        trial.set_user_attr("float_val_roc_auc", res.val_roc_auc)
        trial.set_user_attr("epochs_run", res.epochs_run)
        value = res.val_roc_auc
        if tc.objective == "int8":
            value = int8_val_roc_auc(res.model_path, cfg, tdir / "int8", tc)
            trial.set_user_attr("int8_val_roc_auc", value)
        if math.isnan(value):
            raise EdgeportError("validation ROC-AUC is undefined (no class has both positives and negatives "
                                "in the validation split): raise --val-split or add files")
        return value
    except optuna.TrialPruned:
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        reason = f"{type(e).__name__}: {first}"[:500]
        trial.set_user_attr("fail_reason", reason)
        log.warning("Trial %d failed: %s", trial.number, reason)
        raise
    finally:
        _clear_session()


def _clear_session() -> None:
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def int8_val_roc_auc(model_path: Path, cfg: TrainConfig, outdir: Path, tc: TuneConfig) -> float:
    """Export ``model_path`` to the full-INT8 TFLite artifact (edgeport's export pipeline, its gates) and
    return that artifact's ROC-AUC on the run's validation split. A missed gate raises (the trial fails)."""
    import numpy as np

    from edgeport.audio.dataset import scan_dataset
    from edgeport.errors import ConversionError
    from edgeport.evaluation.metrics import roc_auc_macro
    from edgeport.export import ExportConfig, export_handle
    from edgeport.exporters import ExportOptions
    from edgeport.runtimes import open_runner
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data
    from edgeport.training import data as D

    ds = scan_dataset(cfg.data_path_train, max_samples=cfg.max_samples, seed=cfg.seed)
    _, va = D.split_dataset(ds, cfg.val_split, cfg.seed)
    val = ds.subset(va)
    if not len(val):
        raise ConfigError(f"--objective int8 scores the artifact on the validation split, and --val-split "
                          f"{cfg.val_split:g} leaves no file of {cfg.data_path_train} for it: raise --val-split")
    handle = load_source(model_path)
    attach_audio_data(handle, cfg.data_path_train, num_samples=tc.calibration_samples,
                      validate_samples=tc.validate_samples, progress=False)
    res = export_handle(handle, ExportConfig(
        formats=("tflite_int8_full",), outdir=outdir, force=True, reference_rows=tc.validate_samples,
        seed=cfg.seed, options=ExportOptions(calibration_samples=tc.calibration_samples),
        command_line="edgeport tune --objective int8"))
    art = res.artifacts[0]
    if art.status != "passed":
        why = art.error or "; ".join(art.comparison.failures if art.comparison is not None else [])
        raise ConversionError(f"tflite_int8_full {art.status}: {why}")
    cfg_json = _model_config_json(model_path)
    x, y, _ = D.load_fixed(val.files, val.labels, cfg_json, chunks_per_file=cfg.max_chunks_per_file,
                           max_duration=cfg.max_duration,
                           cache=D.cache_spec(cfg.cache_dir, cfg.cache_memory_mb, 1))
    runner = open_runner("litert", art.path)
    out, failed = runner.run({runner.inputs[0].name: x.astype(np.float32)})
    if failed.any():
        raise ConversionError(f"tflite_int8_full failed on {int(failed.sum())} of {len(failed)} validation chunks")
    scores = out[runner.output_names[0]]
    return roc_auc_macro(y, scores)


def _model_config_json(model_path: Path) -> str:
    from edgeport.training.trainer import output_paths

    return json.dumps(json.loads(output_paths(model_path)["config"].read_text()))


def _copy_into_place(src: Path, dst: Path) -> None:
    from edgeport.fileio import atomic_path

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _finish(study, tc: TuneConfig, outdir: Path, ran: int, seconds: float) -> TuneResult:
    from edgeport.fileio import atomic_write_json
    from edgeport.training.trainer import output_paths

    res = TuneResult(tc.study_name, _redact(tc.storage_url), counted_trials(study),
                     state_counts(study), ran_here=ran, seconds=seconds)
    best = best_trial(study)
    if best is None:
        log.warning("No trial of study '%s' has completed yet", tc.study_name)
        return res
    res.best_number, res.best_value, res.best_params = best.number, best.value, dict(best.params)
    res.best_config = TrainConfig.from_dict({**trial_config(tc.base, dict(best.params), tc.base.checkpoint).to_dict(),
                                             "progress": tc.base.progress})
    atomic_write_json(outdir / "best_params.json", {
        "study": tc.study_name, "trial": best.number, "value": best.value, "objective": tc.objective,
        "params": best.params, "worker": best.user_attrs.get("worker"), "trial_dir": best.user_attrs.get("dir"),
        "train_config": res.best_config.to_dict()})
    src = Path(best.user_attrs.get("dir", "")) / "model.keras"
    if src.is_file():
        dst = output_paths(outdir / "best_model.keras")
        for key, path in output_paths(src).items():
            if path.is_file():
                _copy_into_place(path, dst[key])
        res.best_model = dst["model"]
    else:
        log.warning("The best trial's model is on worker %s (%s), not on this machine",
                    best.user_attrs.get("worker"), src)
    return res


def study_rows(study) -> list[dict]:
    """One row per trial for ``--status``: number, state, value, worker, seconds, reason, parameters."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start \
            else None
        reason = t.user_attrs.get("fail_reason")
        if t.state.name == "FAIL" and not reason:
            reason = "worker stopped (no heartbeat)"
        if t.state.name == "PRUNED":
            last = max(t.intermediate_values) if t.intermediate_values else None
            reason = f"pruned after epoch {last}" if last is not None else "pruned"
        if t.user_attrs.get("baseline"):
            reason = ("command-line configuration; " + (reason or "")).strip("; ")
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "worker": t.user_attrs.get("worker", ""), "seconds": secs, "reason": reason or "",
                     "params": dict(t.params)})
    return rows


def load_study(tc: TuneConfig):
    """The existing study (``--status``): ConfigError when the storage has no study of that name."""
    optuna = _optuna()
    url = tc.storage_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise ConfigError(f"no study storage at {url[len('sqlite:///'):]}: pass the --outdir or --storage the "
                          "study was run with")
    storage = open_storage(url, tc.heartbeat_interval)
    names = optuna.get_all_study_names(storage)
    if tc.study_name not in names:
        have = f"it holds {names}" if names else "it holds no study"
        raise ConfigError(f"no study '{tc.study_name}' in {_redact(tc.storage_url)} ({have}): check --storage "
                          "and --study-name")
    return optuna.load_study(study_name=tc.study_name, storage=storage)


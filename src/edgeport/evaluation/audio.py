"""Evaluate an audio classifier artifact on a labelled test folder (the engine of ``edgeport evaluate``).

The test folder is read as training reads its data (``edgeport.audio.dataset.scan_dataset``: one sub-folder
per species, noise folders give all-zero labels) and every file goes through the same input path as
training (``edgeport.families.audio.frontends``: load, mono, resample, peak-normalise, frontend per chunk),
cut into every chunk (with overlap) instead of training's salient chunks. The artifact runs in its own
runtime; ``evaluate_runner`` pools and scores.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import ConfigError, DataError, SourceError
from edgeport.evaluation.evaluate import (
    EvaluationResult,
    NothingToEvaluate,
    evaluate_runner,
)
from edgeport.evaluation.pooling import DEFAULT_LME_SHARPNESS, POOLINGS
from edgeport.runtimes.base import Runner

log = logging.getLogger(__name__)


def scan_test_folder(root: Path | str, class_names: list[str], *, max_files_per_class: int | None = None,
                     seed: int = 0):
    """``AudioDataset`` of ``root/<species>/`` with labels in the model's class order (noise folders:
    all-zero rows). A species folder the model does not know is an error."""
    from edgeport.audio.dataset import scan_dataset

    root = Path(root)
    if not root.exists():
        raise DataError(f"Test folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"Test folder {root} is a file: expected a folder with one sub-folder per species")
    ds = scan_dataset(root, max_samples=max_files_per_class, seed=seed)
    index = {c: i for i, c in enumerate(class_names)}
    unknown = [c for c in ds.class_names if c not in index]
    if unknown:
        shown = ", ".join(class_names[:10]) + (" ..." if len(class_names) > 10 else "")
        raise DataError(f"Test folders {unknown} under {root} are not classes of the model ({len(class_names)} "
                        f"classes: {shown}): wrong test folder or model config?")
    labels = np.zeros((len(ds), len(class_names)), np.float32)
    for j, c in enumerate(ds.class_names):
        labels[:, index[c]] = ds.labels[:, j]
    ds.class_names, ds.labels = list(class_names), labels
    return ds


def iter_model_inputs(path: Path | str, cfg, *, overlap: float = 0.0, max_duration: float | None = None,
                      block_seconds: float | None = None,
                      group: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(model inputs (n, ...), chunk start/end seconds (n, 2))`` groups of every chunk of one file, in order:
    training's input path (load, mono, resample, peak-normalise when the input contract says so;
    ``contract.features`` per chunk) with
    every chunk instead of salient ones; ``overlap`` is the fraction of a chunk that consecutive chunks
    share. Long files are streamed in blocks (``edgeport.audio.stream``). Raises AudioReadError."""
    from edgeport.audio.chunking import chunk_times_from_starts
    from edgeport.audio.stream import BLOCK_SECONDS, GROUP_CHUNKS, iter_chunks
    from edgeport.families.audio.contract import features, normalizes

    for chunks, starts, n in iter_chunks(path, cfg.sample_rate, cfg.chunk_samples, overlap, max_duration=max_duration,
                                         block_seconds=block_seconds or BLOCK_SECONDS, group=group or GROUP_CHUNKS,
                                         normalize=normalizes(cfg)):
        inputs = np.stack([features(c, cfg) for c in chunks]).astype(np.float32)
        yield inputs, chunk_times_from_starts(starts, cfg.chunk_samples, n, cfg.sample_rate)


def file_inputs(task: tuple) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Worker job: (path, model config JSON, overlap fraction, max_duration) -> (inputs, chunk times, error)."""
    from edgeport.audio.io import AudioReadError
    from edgeport.training.data import _cfg

    path, cfg_json, overlap, max_duration = task
    try:
        parts = list(iter_model_inputs(path, _cfg(cfg_json), overlap=overlap, max_duration=max_duration))
    except AudioReadError as e:
        return None, None, str(e)
    return np.concatenate([x for x, _ in parts]), np.concatenate([t for _, t in parts]), None


def audio_items(ds, cfg, *, overlap: float = 0.0, max_duration: float | None = None, executor=None,
                skipped: list | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """``(file id relative to the folder, labels, model inputs (n_chunks, ...), chunk times)`` per file, in
    order; ``overlap`` in seconds. Files that cannot be decoded are left out and appended to ``skipped``."""
    import json

    frac = overlap / cfg.chunk_duration
    cfg_json = json.dumps(cfg.to_dict(), sort_keys=True)
    tasks = [(f, cfg_json, frac, max_duration) for f in ds.files]
    results = executor.map(file_inputs, tasks, chunksize=4) if executor else map(file_inputs, tasks)
    root = Path(ds.root)
    for f, y, (x, t, err) in zip(ds.files, ds.labels, results, strict=True):
        if err is not None:
            log.warning("Skipping unreadable file %s", err)
            if skipped is not None:
                skipped.append((f, err))
            continue
        fid = str(Path(f).relative_to(root)) if Path(f).is_relative_to(root) else str(f)
        yield fid, y, x, t


def sigmoid_choice(apply_sigmoid: bool | None, cfg) -> bool | None:
    """``apply_sigmoid`` as asked, else as the model config says (``sigmoid_in_graph``); None: decide from the
    output name and the score range (``evaluate.score_segments``)."""
    if apply_sigmoid is None and cfg.sigmoid_in_graph is not None:
        return not cfg.sigmoid_in_graph
    return apply_sigmoid


def check_artifact_matches(runner, cfg, artifact: Path, cfg_source: str):
    """One input whose shape (batch aside) is the input shape of the model config's input contract;
    ConfigError otherwise (naming both shapes and the config keys that would make them agree). Returns the
    config with its contract settled by the artifact's input shape (``contract.resolve``)."""
    if len(runner.inputs) != 1:
        raise ConfigError(f"{artifact.name} takes {len(runner.inputs)} inputs "
                          f"{[t.name for t in runner.inputs]}; an audio classifier takes one")
    from edgeport.families.audio.contract import resolve

    return resolve(cfg, tuple(runner.inputs[0].shape[1:]), what=artifact.name, cfg_source=cfg_source)


def check_options(*, pooling: str = "avg", sharpness: float = DEFAULT_LME_SHARPNESS, threshold: float = 0.5,
                  batch_size: int = 64, n_boot: int = 1000, ci: float = 0.95, max_duration: float | None = None,
                  max_files_per_class: int | None = None, num_workers: int = 0, threads: int | None = None,
                  overlap: float = 0.0) -> None:
    """Every option's range, before the artifact is opened or any audio read (ConfigError, exit 2)."""
    POOLINGS.get(pooling)  # unknown -> ConfigError listing avg, max, lme
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1, got {threshold}")
    if not sharpness > 0:
        raise ConfigError(f"--lme-sharpness must be a positive number, got {sharpness:g}")
    if n_boot < 1:
        raise ConfigError(f"--n-boot must be at least 1, got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"--ci is a confidence level in (0, 1), e.g. 0.95; got {ci:g}")
    if max_files_per_class is not None and max_files_per_class < 1:
        raise ConfigError(f"--max-samples must be at least 1 (files per class), got {max_files_per_class}")
    if max_duration is not None and not max_duration > 0:
        raise ConfigError(f"--max-duration must be a positive number of seconds, got {max_duration:g}")
    if num_workers < 0 or (threads is not None and threads < 1):
        raise ConfigError("--num-workers must be >= 0 and --threads >= 1")
    if not overlap >= 0:
        raise ConfigError(f"--overlap must be at least 0, got {overlap:g}")


def evaluate_audio_artifact(
    artifact: Path | str,
    test_dir: Path | str,
    *,
    model_config: Path | str | None = None,
    overlap: float = 0.0,
    pooling: str = "avg",
    sharpness: float = DEFAULT_LME_SHARPNESS,
    threshold: float = 0.5,
    batch_size: int = 64,
    apply_sigmoid: bool | None = None,
    output_name: str | None = None,
    species_report: bool = False,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    benchmark_latency: bool = False,
    max_duration: float | None = None,
    max_files_per_class: int | None = None,
    num_workers: int = 0,
    trust_source: bool = False,
    threads: int | None = None,
    runner: Runner | None = None,
    progress: bool = True,
    info: dict | None = None,
) -> EvaluationResult:
    """Run ``artifact`` (``.keras``, ``.tflite``, ``.onnx``, SavedModel folder) on every chunk of every file of
    ``test_dir`` and evaluate the pooled file scores (see docs/evaluate.md).

    The model config is ``model_config`` or found from the artifact's name (``find_model_config``).
    ``overlap`` is in seconds; ``apply_sigmoid=None`` decides from the output name and the score range.
    ``runner``: an already opened runner of ``artifact`` (e.g. a ``LiteRTRunner`` opened with
    ``probe_resize=False``, which feeds a fixed-batch model in fixed-size chunks).
    """
    from edgeport.families.audio.model_config import find_model_config
    from edgeport.runtimes import open_runner, runtime_for_path

    check_options(pooling=pooling, sharpness=sharpness, threshold=threshold, batch_size=batch_size, n_boot=n_boot,
                  ci=ci, max_duration=max_duration, max_files_per_class=max_files_per_class, num_workers=num_workers,
                  threads=threads, overlap=overlap)
    artifact = Path(artifact)
    if not artifact.exists():
        raise SourceError(f"Artifact not found: {artifact}")
    runtime = runner.name if runner is not None else runtime_for_path(artifact)
    cfg, cfg_source = find_model_config(artifact, model_config)
    if not 0.0 <= overlap < cfg.chunk_duration:
        raise ConfigError(f"--overlap must be at least 0 and below the chunk duration ({cfg.chunk_duration:g} s), "
                          f"got {overlap:g}")
    apply_sigmoid = sigmoid_choice(apply_sigmoid, cfg)
    class_names = list(cfg.class_names)
    if not class_names:
        raise ConfigError(f"the model config {cfg_source} lists no class_names")
    ds = scan_test_folder(test_dir, class_names, max_files_per_class=max_files_per_class, seed=seed)
    kwargs: dict[str, Any] = {}
    if runtime == "keras":
        kwargs["trust_source"] = trust_source
    elif threads is not None:
        kwargs["threads"] = threads
    if runner is None:
        runner = open_runner(runtime, artifact, **kwargs)
    cfg = check_artifact_matches(runner, cfg, artifact, cfg_source)
    log.info("Evaluating %s (%s) on %d files of %s: %s frontend, %g s chunks, overlap %g s", artifact.name, runtime,
             len(ds), test_dir, cfg.audio_frontend, cfg.chunk_duration, overlap)

    from edgeport.training.data import make_executor

    skipped: list[tuple[str, str]] = list(ds.skipped)
    executor = make_executor(num_workers)
    try:
        items = audio_items(ds, cfg, overlap=overlap, max_duration=max_duration, executor=executor, skipped=skipped)
        result = evaluate_runner(
            runner, items, class_names, batch_size=batch_size, output_name=output_name, apply_sigmoid=apply_sigmoid,
            pooling=pooling, sharpness=sharpness, threshold=threshold, species_report=species_report, n_boot=n_boot,
            ci=ci, seed=seed, benchmark_latency=benchmark_latency, total=len(ds), progress=progress,
            info={"artifact": artifact.name, "artifact_path": str(artifact), "model_config": cfg_source,
                  "test_folder": str(test_dir), "audio_frontend": cfg.audio_frontend,
                  "chunk_duration_s": cfg.chunk_duration, "overlap_s": overlap, "sample_rate": cfg.sample_rate,
                  "fixed_batch": runner.fixed_batch, **(info or {})},
        )
    except NothingToEvaluate:
        if not skipped:
            raise
        raise DataError(f"none of the {len(ds)} audio files under {test_dir} could be decoded ({len(skipped)} "
                        f"unreadable, e.g. {Path(skipped[0][0]).name}: {skipped[0][1]}): check the files") from None
    finally:
        if executor is not None:
            executor.shutdown()
    result.info["skipped_files"] = [f"{Path(f).name}: {why}" for f, why in skipped]
    return result


__all__ = [
    "audio_items",
    "check_artifact_matches",
    "evaluate_audio_artifact",
    "file_inputs",
    "iter_model_inputs",
    "scan_test_folder",
    "sigmoid_choice",
]

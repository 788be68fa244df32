"""Evaluation of scores (or of a runner) against file labels, independent of how inputs were computed.

``evaluate_scores`` takes chunk scores per file and pools, scores and summarises them;
``evaluate_runner`` runs any edgeport ``Runner`` over ``(file_id, labels, model_inputs, chunk_times)``
items and hands its outputs to ``evaluate_scores``. The audio pipeline (chunking, spectrograms) lives
elsewhere and only has to produce those items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeport.audio.chunking import chunk_times_from_starts
from edgeport.errors import ConfigError, DataError
from edgeport.evaluation.metrics import multilabel_metrics
from edgeport.evaluation.pooling import DEFAULT_LME_SHARPNESS, POOLINGS, pool_scores
from edgeport.runtimes.base import Runner
from edgeport.sources.base import Feeds

log = logging.getLogger(__name__)

#: the figures printed first and shown at the top of every report
HEADLINE = ("roc_auc_macro", "roc_auc_micro", "cmap", "map", "precision_micro", "recall_micro", "f1_micro",
            "precision_macro", "recall_macro", "f1_macro")


@dataclass
class EvaluationResult:
    """Everything one evaluation produced: inputs kept for the CSVs and plots, figures in ``metrics``.

    ``file_ids``/``y_true``/``file_scores`` hold the files that were scored; ``failed_files`` the files
    left out because none of their chunks ran (they are not in any metric). ``chunk_scores`` keep NaN
    rows for failed chunks; ``chunk_times`` are (n_chunks, 2) start/end seconds (NaN when unknown).
    """

    class_names: list[str]
    file_ids: list[str]
    y_true: np.ndarray
    file_scores: np.ndarray
    chunk_scores: list[np.ndarray]
    chunk_times: list[np.ndarray]
    pooling: str
    sharpness: float
    threshold: float
    metrics: dict
    total_chunks: int = 0
    failed_chunks: int = 0
    failed_files: list[str] = field(default_factory=list)
    latency: dict | None = None
    info: dict = field(default_factory=dict)

    @property
    def headline(self) -> dict[str, float | None]:
        return {k: self.metrics.get(k) for k in HEADLINE}

    def to_dict(self) -> dict[str, Any]:
        """All figures, JSON-ready (no arrays of scores: those go to the CSVs)."""
        return {
            "summary": self.headline,
            "pooling": {"method": self.pooling, "lme_sharpness": self.sharpness if self.pooling == "lme" else None},
            "threshold": self.threshold,
            "class_names": list(self.class_names),
            "files": {"evaluated": len(self.file_ids), "failed": list(self.failed_files)},
            "chunks": {"total": int(self.total_chunks), "failed": int(self.failed_chunks)},
            "latency": self.latency,
            "metrics": self.metrics,
            "info": self.info,
        }



class NothingToEvaluate(DataError):
    """No file gave model inputs."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow (``0.5 * (1 + tanh(x / 2))``)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def _times(t, n: int, file_id: str) -> np.ndarray:
    if t is None:
        return np.full((n, 2), np.nan)
    a = np.asarray(t, dtype=np.float64)
    if a.ndim == 1 and a.shape[0] == n:
        return np.stack([a, np.full(n, np.nan)], axis=1)  # starts only
    if a.shape != (n, 2):
        raise DataError(f"{file_id}: chunk times must be (n_chunks, 2) start/end seconds, got {a.shape} for {n} chunks")
    return a


#: the keyword options of ``evaluate_scores`` that ``evaluate_runner`` passes on
SCORING_OPTIONS = frozenset({"pooling", "sharpness", "threshold", "species_report", "n_boot", "ci", "seed"})


def evaluate_scores(
    file_ids: Sequence[str],
    chunk_scores: Sequence[np.ndarray],
    chunk_times: Sequence[np.ndarray | None] | None,
    y_true_files,
    class_names: Sequence[str],
    *,
    pooling: str = "avg",
    sharpness: float = DEFAULT_LME_SHARPNESS,
    threshold: float = 0.5,
    species_report: bool = False,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    progress: bool = False,
    latency: dict | None = None,
    info: dict | None = None,
) -> EvaluationResult:
    """Pool each file's chunk scores (rows with NaN/inf are failed chunks: counted, not pooled) and
    compute every metric on the file scores against ``y_true_files`` (n_files, n_classes) in {0, 1}.
    Files without a usable chunk are left out of the metrics and listed in ``failed_files``."""
    POOLINGS.get(pooling)  # unknown name -> ConfigError listing the known ones
    class_names = [str(c) for c in class_names]
    C = len(class_names)
    y_all = np.asarray(y_true_files, dtype=np.float64)
    n_files = len(file_ids)
    if y_all.shape != (n_files, C):
        raise DataError(f"labels are {y_all.shape} but there are {n_files} files and {C} classes")
    if len(chunk_scores) != n_files:
        raise DataError(f"{len(chunk_scores)} chunk-score arrays for {n_files} files")
    if chunk_times is not None and len(chunk_times) != n_files:
        raise DataError(f"{len(chunk_times)} chunk-time arrays for {n_files} files")
    keep, pooled, scores_kept, times_kept, failed_files = [], [], [], [], []
    total = failed = 0
    for i, fid in enumerate(file_ids):
        s = np.asarray(chunk_scores[i], dtype=np.float64)
        if s.ndim == 1 and s.size == C:
            s = s[None, :]
        s = s.reshape(s.shape[0], -1) if s.ndim >= 1 and s.size else np.zeros((0, C))
        if s.shape[1] != C:
            raise DataError(f"{fid}: chunk scores have {s.shape[1]} columns for {C} classes")
        ok = np.all(np.isfinite(s), axis=1)
        total += s.shape[0]
        failed += int((~ok).sum())
        if not ok.any():
            failed_files.append(str(fid))
            continue
        keep.append(i)
        pooled.append(pool_scores(s[ok], pooling, sharpness=sharpness))
        scores_kept.append(s)
        times_kept.append(_times(None if chunk_times is None else chunk_times[i], s.shape[0], str(fid)))
    if failed_files:
        log.warning("%d of %d files had no chunk that ran and are left out of the metrics", len(failed_files), n_files)
    if not keep:
        raise DataError("no file could be scored (every chunk failed or no file had a chunk)")
    y = y_all[keep]
    file_scores = np.stack(pooled)
    metrics = multilabel_metrics(y, file_scores, class_names, threshold=threshold, species_report=species_report,
                                 n_boot=n_boot, ci=ci, seed=seed, progress=progress)
    return EvaluationResult(
        class_names=class_names,
        file_ids=[str(file_ids[i]) for i in keep],
        y_true=y,
        file_scores=file_scores,
        chunk_scores=scores_kept,
        chunk_times=times_kept,
        pooling=pooling,
        sharpness=float(sharpness),
        threshold=float(threshold),
        metrics=metrics,
        total_chunks=total,
        failed_chunks=failed,
        failed_files=failed_files,
        latency=latency,
        info=dict(info or {}),
    )


# ------------------------------------------------------------------------------------ runner side


def _as_feeds(runner: Runner, inputs, file_id: str) -> Feeds:
    if isinstance(inputs, dict):
        return {k: np.asarray(v) for k, v in inputs.items()}
    names = [t.name for t in runner.inputs]
    if len(names) > 1:
        raise ConfigError(f"the model takes {len(names)} inputs {names}; give {file_id}'s inputs as a dict by name")
    return {names[0] if names else "input": np.asarray(inputs)}


def pick_output(outputs: dict[str, np.ndarray], n_classes: int, output_name: str | None = None) -> str:
    """The output holding the class scores: ``output_name``, the only output, or the only one with
    ``n_classes`` columns."""
    if output_name is not None:
        if output_name not in outputs:
            raise ConfigError(f"the model has no output '{output_name}'; its outputs are {list(outputs)}")
        return output_name
    if len(outputs) == 1:
        return next(iter(outputs))
    fits = [k for k, v in outputs.items() if v.ndim >= 2 and v.shape[-1] == n_classes]
    if len(fits) != 1:
        raise ConfigError(f"cannot tell which of the outputs {list(outputs)} holds the {n_classes} class scores; "
                          "name it (output_name / --output-name)")
    return fits[0]


def decide_sigmoid(output_name: str | None, scores: np.ndarray) -> tuple[bool | None, str | None]:
    """Whether scores are logits (apply the sigmoid) and why: an output named ``*logit*``, or any finite
    score outside [0, 1]. ``(None, None)`` when nothing finite was seen yet (decide on a later batch)."""
    if output_name and "logit" in output_name.lower():
        return True, f"output '{output_name}' is named as logits"
    fin = np.asarray(scores)[np.isfinite(scores)]
    if not fin.size:
        return None, None
    lo, hi = float(fin.min()), float(fin.max())
    if lo < 0.0 or hi > 1.0:
        return True, f"scores range {lo:.3g}..{hi:.3g}, outside [0, 1]: taken as logits"
    return False, f"scores range {lo:.3g}..{hi:.3g}, within [0, 1]: taken as probabilities"


def _per_chunk_ms(lat: dict[str, float], rows: int) -> dict[str, float]:
    return {k.replace("_s", "_ms"): 1000.0 * v / rows for k, v in lat.items()}


@dataclass
class ScoringState:
    """What ``score_segments`` learnt while scoring: the output used, the sigmoid decision (and why), the
    rows run and the seconds spent in the runtime, and the first batch (for latency timing)."""

    sigmoid: bool | None = False
    reason: str | None = None
    output: str | None = None
    seconds: float = 0.0
    chunks: int = 0
    sample: Feeds | None = None
    warned: bool = False


def score_segments(
    runner: Runner,
    segments: Iterable[tuple[Any, Feeds]],
    n_classes: int,
    *,
    batch_size: int = 64,
    output_name: str | None = None,
    apply_sigmoid: bool | None = False,
    state: ScoringState | None = None,
) -> Iterator[tuple[Any, np.ndarray]]:
    """``(key, scores (n_rows, n_classes))`` for every ``(key, feeds)`` segment, in order: the rows of
    consecutive segments are batched together (a call once ``batch_size`` rows are waiting), failed rows
    (the runner's mask) are NaN. ``apply_sigmoid`` turns logits into probabilities; ``None`` decides on
    the first batch that ran (``decide_sigmoid``). The one scoring loop of ``evaluate`` and ``predict``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    st = state if state is not None else ScoringState()
    st.sigmoid = apply_sigmoid
    pending: list[tuple[Any, Feeds, int]] = []

    def flush() -> list[tuple[Any, np.ndarray]]:
        rows = sum(n for _, _, n in pending)
        if rows == 0:
            done = [(key, np.zeros((0, n_classes))) for key, _, _ in pending]
            pending.clear()
            return done
        feeds = {k: np.concatenate([f[k] for _, f, n in pending if n], axis=0) for k in pending[0][1]}
        if st.sample is None:
            st.sample = {k: v[:batch_size] for k, v in feeds.items()}
        t0 = time.perf_counter()
        outs, failed = runner.run(feeds, batch_size)
        st.seconds += time.perf_counter() - t0
        st.chunks += rows
        if st.output is None:
            st.output = pick_output(outs, n_classes, output_name)
        out = np.asarray(outs[st.output], dtype=np.float64)
        out = out.reshape(out.shape[0], -1)
        if out.shape[1] != n_classes:
            raise ConfigError(f"the model's output '{st.output}' has {out.shape[1]} scores per chunk but "
                              f"{n_classes} class names were given; check the model config")
        out[failed] = np.nan
        if st.sigmoid is None:
            st.sigmoid, st.reason = decide_sigmoid(st.output, out)
        if st.sigmoid:
            out = sigmoid(out)
        elif not st.warned:
            fin = out[np.isfinite(out)]
            if fin.size and (fin.min() < 0 or fin.max() > 1):
                log.warning("scores outside [0, 1]: if the model ends in logits, apply the sigmoid (apply_sigmoid)")
                st.warned = True
        done, start = [], 0
        for key, _, n in pending:
            done.append((key, out[start : start + n]))
            start += n
        pending.clear()
        return done

    buffered = 0
    for key, feeds in segments:
        n = int(next(iter(feeds.values())).shape[0]) if feeds else 0
        pending.append((key, feeds, n))
        buffered += n
        if buffered >= batch_size:
            yield from flush()
            buffered = 0
    yield from flush()


def evaluate_runner(
    runner: Runner,
    file_chunks: Iterable[tuple[str, Any, Any, Any]],
    class_names: Sequence[str],
    *,
    batch_size: int = 64,
    output_name: str | None = None,
    apply_sigmoid: bool | None = False,
    benchmark_latency: bool = False,
    latency_repeats: int = 20,
    latency_warmup: int = 3,
    total: int | None = None,
    progress: bool = True,
    info: dict | None = None,
    **scoring,
) -> EvaluationResult:
    """Run ``runner`` on every file's chunks and evaluate the pooled scores.

    ``file_chunks`` yields ``(file_id, label_vector (C,), model_inputs, chunk_times)`` with
    ``model_inputs`` an array (n_chunks, ...) for a one-input model or a dict of arrays by input name,
    and ``chunk_times`` (n_chunks, 2) start/end seconds or None. Chunks of consecutive files are batched
    together (``batch_size`` rows per call, ``score_segments``). Chunks that fail to run (or give NaN/inf)
    are counted. ``apply_sigmoid`` turns logits into probabilities before pooling; ``None`` decides on the
    first batch that ran (``decide_sigmoid``) and records the decision and its reason in ``info``. With
    ``benchmark_latency`` the wall-clock time per chunk is measured at batch 1 and at ``batch_size`` on the
    first chunks. ``scoring``: ``evaluate_scores``'s options (``pooling``, ``sharpness``, ``threshold``,
    ``species_report``, ``n_boot``, ``ci``, ``seed``).
    """
    unknown = sorted(set(scoring) - SCORING_OPTIONS)
    if unknown:
        raise TypeError(f"evaluate_runner() got unexpected keyword arguments {unknown}")
    POOLINGS.get(scoring.get("pooling", "avg"))
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    class_names = [str(c) for c in class_names]
    if total is None and hasattr(file_chunks, "__len__"):
        total = len(file_chunks)  # type: ignore[arg-type]
    from tqdm.auto import tqdm

    files = _FileItems(runner, len(class_names))
    state = ScoringState()
    bar = tqdm(file_chunks, total=total, desc="evaluate", unit="file", disable=not progress)
    by_index = dict(score_segments(runner, files.segments(bar), len(class_names), batch_size=batch_size,
                                   output_name=output_name, apply_sigmoid=apply_sigmoid, state=state))
    bar.close()
    if not files.ids:
        raise NothingToEvaluate("nothing to evaluate: no files were given")
    scores = [by_index[i] for i in range(len(files.ids))]
    latency = _latency(runner, state, benchmark_latency, repeats=latency_repeats, warmup=latency_warmup)
    return evaluate_scores(
        files.ids, scores, files.times, np.stack(files.labels), class_names, **scoring, progress=progress,
        latency=latency,
        info={"runtime": runner.name, "apply_sigmoid": bool(state.sigmoid), "output": state.output,
              **({"sigmoid_decision": state.reason} if apply_sigmoid is None else {}), **(info or {})},
    )


class _FileItems:
    """The files of an evaluation as they are read: ids, label vectors and chunk times, in order."""

    def __init__(self, runner: Runner, n_classes: int):
        self.runner, self.n_classes = runner, n_classes
        self.ids: list[str] = []
        self.labels: list[np.ndarray] = []
        self.times: list[Any] = []

    def segments(self, items: Iterable) -> Iterator[tuple[int, Feeds]]:
        """``(file_id, label_vector, model_inputs, chunk_times)`` items -> (file index, feeds) segments."""
        for item in items:
            try:
                file_id, label, inputs, chunk_times = item
            except (TypeError, ValueError):
                raise DataError("each evaluation item must be (file_id, label_vector, model_inputs, chunk_times)") from None
            lab = np.asarray(label, dtype=np.float64).reshape(-1)
            if lab.size != self.n_classes:
                raise DataError(f"{file_id}: label vector has {lab.size} entries for {self.n_classes} classes")
            feeds = _as_feeds(self.runner, inputs, str(file_id))
            self.ids.append(str(file_id))
            self.labels.append(lab)
            self.times.append(chunk_times)
            yield len(self.ids) - 1, feeds


def _latency(runner: Runner, state: ScoringState, benchmark: bool, *, repeats: int, warmup: int) -> dict[str, Any]:
    """Throughput of the scoring pass; with ``benchmark`` also the time per chunk at batch 1 and batched, on
    the first chunks."""
    latency: dict[str, Any] = {
        "inference_seconds": state.seconds,
        "chunks": state.chunks,
        "chunks_per_second": state.chunks / state.seconds if state.seconds > 0 else None,
    }
    if benchmark and state.sample is not None:
        sample = state.sample
        rows = int(next(iter(sample.values())).shape[0])
        one = {k: v[:1] for k, v in sample.items()}
        latency["per_chunk_ms"] = {
            "batch_1": _per_chunk_ms(runner.latency(one, repeats=repeats, warmup=warmup), 1),
            "batched": _per_chunk_ms(runner.latency(sample, repeats=repeats, warmup=warmup), rows),
        }
        latency["batched_rows"] = rows
        latency["runtime"] = runner.name
    return latency


__all__ = ["HEADLINE", "EvaluationResult", "ScoringState", "chunk_times_from_starts", "decide_sigmoid",
           "evaluate_runner", "evaluate_scores", "pick_output", "score_segments", "sigmoid"]

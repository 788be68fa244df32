"""Audio predictions: every chunk of every recording -> detections (start, end, label, confidence).

The chunks and their scores come from ``evaluate``'s own path: ``evaluation.audio.iter_model_inputs``
(training's input path, long files streamed in blocks) and ``evaluation.evaluate.score_segments`` (batched
inference across files, failed rows counted, the sigmoid decided as ``evaluate`` decides). The model config
is found as ``evaluate`` finds it (``find_model_config``). An optional ``LocationFilter`` drops species a geo
model does not expect at a place and week.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import ConfigError, DataError, SourceError
from edgeport.runtimes.base import Runner

log = logging.getLogger(__name__)

DEFAULT_MIN_CONF = 0.1


def split_label(label: str) -> tuple[str, str]:
    """``"Turdus merula_Eurasian Blackbird"`` -> (scientific, common); ``("", "")`` when the label is not
    ``Genus species_Common name`` (one underscore, a space in the scientific part)."""
    sci, sep, common = label.partition("_")
    if sep and " " in sci.strip() and common.strip() and "_" not in common:
        return sci.strip(), common.strip()
    return "", ""


@dataclass
class Detection:
    file: str
    start_s: float
    end_s: float
    label: str
    scientific_name: str
    common_name: str
    confidence: float


@dataclass
class FileResult:
    """One recording: its detections in time order (most confident first within a chunk)."""

    file: str
    path: Path
    detections: list[Detection]
    chunks: int
    duration_s: float
    failed_chunks: int = 0
    removed_by_location: int = 0


@dataclass
class LocationFilter:
    """Which of the audio model's classes a geo model expects at one place and week.

    ``keep[c]`` is False for a class whose scientific name the geo model lists with a probability below
    ``threshold``; classes without a match in the geo labels are kept (``unmatched``)."""

    lat: float
    lon: float
    week: float
    threshold: float
    keep: np.ndarray
    unmatched: list[str]
    removed: list[str]
    geo_artifact: str

    def to_dict(self) -> dict:
        return {"lat": self.lat, "lon": self.lon, "week": self.week, "geo_threshold": self.threshold,
                "geo_model": self.geo_artifact, "classes_removed": list(self.removed),
                "classes_unmatched": list(self.unmatched)}


def location_filter(geo_artifact: Path | str, class_names: list[str], lat: float, lon: float, week: float, *,
                    threshold: float = 0.03, labels: Path | str | None = None,
                    threads: int | None = None) -> LocationFilter:
    """Run the geo model once at (lat, lon, week) and match the audio classes to its labels by scientific
    name (case-insensitive; an audio label that is not ``Scientific_Common`` is matched as a whole)."""
    from edgeport.prediction.geo import GeoPredictor, check_point, check_threshold

    check_point(lat, lon, week)
    check_threshold(threshold, "--geo-threshold")
    geo = GeoPredictor(geo_artifact, labels=labels, threads=threads)
    probs = geo.probabilities(np.array([[lat, lon, week]], np.float32))[0]
    by_sci = {lab.scientific.strip().lower(): float(p) for lab, p in zip(geo.labels, probs, strict=True)}
    keep = np.ones(len(class_names), dtype=bool)
    unmatched, removed = [], []
    for c, name in enumerate(class_names):
        sci = (split_label(name)[0] or name).lower()
        if sci not in by_sci:
            unmatched.append(name)
        elif by_sci[sci] < threshold:
            keep[c] = False
            removed.append(name)
    if len(unmatched) == len(class_names):
        log.warning("None of the %d audio classes matches a scientific name of %s: the location filter keeps "
                    "everything", len(class_names), geo.labels_path)
    return LocationFilter(lat, lon, week, threshold, keep, unmatched, removed, str(geo_artifact))


def list_audio(inputs: Path | str) -> tuple[list[Path], Path]:
    """The audio files of a file or a folder (searched recursively, sorted) and the folder ids are relative to."""
    from edgeport.audio.io import AUDIO_EXTENSIONS, is_audio_file

    p = Path(inputs)
    if not p.exists():
        raise DataError(f"Input not found: {p}")
    if p.is_file():
        if p.suffix.lower() not in AUDIO_EXTENSIONS:
            raise DataError(f"{p} is not an audio file (known: {', '.join(AUDIO_EXTENSIONS)})")
        return [p], p.parent
    files = sorted(f for f in p.rglob("*") if is_audio_file(f))
    if not files:
        raise DataError(f"No audio files in {p} (looked for {', '.join(AUDIO_EXTENSIONS)}, recursively): "
                        "point --input to a recording or a folder of recordings")
    return files, p


class AudioPredictor:
    """Everything checked up front (artifact, model config, options, input files); ``run()`` then yields one
    ``FileResult`` per readable file. Unreadable files are left out and listed in ``skipped``."""

    def __init__(
        self,
        artifact: Path | str,
        inputs: Path | str,
        *,
        model_config: Path | str | None = None,
        overlap: float = 0.0,
        min_conf: float = DEFAULT_MIN_CONF,
        top_k: int | None = None,
        batch_size: int = 64,
        apply_sigmoid: bool | None = None,
        output_name: str | None = None,
        max_duration: float | None = None,
        location: LocationFilter | None = None,
        trust_source: bool = False,
        threads: int | None = None,
        runner: Runner | None = None,
        block_seconds: float | None = None,
    ):
        from edgeport.evaluation.audio import check_artifact_matches, sigmoid_choice
        from edgeport.families.audio.model_config import find_model_config
        from edgeport.runtimes import open_runner, runtime_for_path

        if not 0.0 <= min_conf <= 1.0:
            raise ConfigError(f"--min-conf must be between 0 and 1, got {min_conf:g}")
        if top_k is not None and top_k < 1:
            raise ConfigError(f"--top-k must be at least 1, got {top_k}")
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        self.artifact = Path(artifact)
        if not self.artifact.exists():
            raise SourceError(f"Artifact not found: {self.artifact}")
        runtime = runner.name if runner is not None else runtime_for_path(self.artifact)
        self.cfg, self.cfg_source = find_model_config(self.artifact, model_config)
        if not 0.0 <= overlap < self.cfg.chunk_duration:
            raise ConfigError(f"--overlap must be at least 0 and below the chunk duration "
                              f"({self.cfg.chunk_duration:g} s), got {overlap:g}")
        self.class_names = [str(c) for c in self.cfg.class_names]
        if not self.class_names:
            raise ConfigError(f"the model config {self.cfg_source} lists no class_names")
        if location is not None and len(location.keep) != len(self.class_names):
            raise ConfigError(f"the location filter was built for {len(location.keep)} classes, the model has "
                              f"{len(self.class_names)}")
        self.files, self.root = list_audio(inputs)
        if runner is None:
            kwargs: dict[str, Any] = {"trust_source": trust_source} if runtime == "keras" else (
                {"threads": threads} if threads is not None else {})
            runner = open_runner(runtime, self.artifact, **kwargs)
        self.cfg = check_artifact_matches(runner, self.cfg, self.artifact, self.cfg_source)
        apply_sigmoid = sigmoid_choice(apply_sigmoid, self.cfg)
        self.runner = runner
        self.names = [split_label(c) for c in self.class_names]
        self.overlap, self.min_conf, self.top_k = overlap, min_conf, top_k
        self.batch_size, self.apply_sigmoid, self.output_name = batch_size, apply_sigmoid, output_name
        self.max_duration, self.location, self.block_seconds = max_duration, location, block_seconds
        self.skipped: list[tuple[str, str]] = []
        from edgeport.evaluation.evaluate import ScoringState

        self.state = ScoringState()

    def file_id(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    @property
    def info(self) -> dict:
        s = self.state
        return {"artifact": self.artifact.name, "artifact_path": str(self.artifact), "runtime": self.runner.name,
                "model_config": self.cfg_source, "audio_frontend": self.cfg.audio_frontend,
                "sample_rate": self.cfg.sample_rate, "chunk_duration_s": self.cfg.chunk_duration,
                "overlap_s": self.overlap, "min_conf": self.min_conf, "top_k": self.top_k,
                "apply_sigmoid": bool(s.sigmoid), "output": s.output,
                **({"sigmoid_decision": s.reason} if self.apply_sigmoid is None else {}),
                "chunks": s.chunks, "inference_seconds": s.seconds,
                "location_filter": self.location.to_dict() if self.location else None,
                "skipped_files": [f"{f}: {why}" for f, why in self.skipped]}

    def _segments(self) -> Iterator[tuple[tuple[int, np.ndarray], dict]]:
        from edgeport.audio.io import AudioReadError
        from edgeport.evaluation.audio import iter_model_inputs

        name = self.runner.inputs[0].name
        frac = self.overlap / self.cfg.chunk_duration
        for i, path in enumerate(self.files):
            try:
                for x, t in iter_model_inputs(path, self.cfg, overlap=frac, max_duration=self.max_duration,
                                              block_seconds=self.block_seconds):
                    yield (i, t), {name: x}
            except AudioReadError as e:
                log.warning("Skipping unreadable file %s", e)
                self.skipped.append((self.file_id(path), str(e).split(": ", 1)[-1]))

    def detections(self, fid: str, scores: np.ndarray, times: np.ndarray) -> tuple[list[Detection], int]:
        """Per chunk, the classes at or above ``min_conf`` (most confident first, at most ``top_k``) and
        how many the location filter removed."""
        s = np.where(np.isfinite(scores), scores, -np.inf)
        above = s >= self.min_conf
        removed = 0
        if self.location is not None:
            removed = int((above & ~self.location.keep).sum())
            above &= self.location.keep
        out = []
        for r in np.flatnonzero(above.any(axis=1)):
            cols = np.flatnonzero(above[r])
            cols = cols[np.argsort(-s[r, cols], kind="stable")][: self.top_k]
            for c in cols:
                sci, common = self.names[c]
                out.append(Detection(fid, float(times[r, 0]), float(times[r, 1]), self.class_names[c], sci,
                                     common, float(s[r, c])))
        return out, removed

    def run(self) -> Iterator[FileResult]:
        """One ``FileResult`` per readable file, in order (a file's result comes once all its chunks ran)."""
        from edgeport.evaluation.evaluate import score_segments

        cur: dict[str, Any] = {"i": None, "scores": [], "times": []}
        skipped_before = len(self.skipped)

        def finish() -> FileResult | None:
            i = cur["i"]
            if i is None:
                return None
            path = self.files[i]
            fid = self.file_id(path)
            scores, times = np.concatenate(cur["scores"]), np.concatenate(cur["times"])
            cur.update(i=None, scores=[], times=[])
            if any(f == fid for f, _ in self.skipped[skipped_before:]):
                return None  # failed part-way through (its earlier blocks were scored): left out
            dets, removed = self.detections(fid, scores, times)
            failed = int((~np.isfinite(scores).all(axis=1)).sum())
            return FileResult(fid, path, dets, len(scores), float(times[-1, 1]) if len(times) else 0.0, failed,
                              removed)

        for (i, t), s in score_segments(self.runner, self._segments(), len(self.class_names),
                                        batch_size=self.batch_size, output_name=self.output_name,
                                        apply_sigmoid=self.apply_sigmoid, state=self.state):
            if cur["i"] is not None and i != cur["i"]:
                done = finish()
                if done is not None:
                    yield done
            cur["i"] = i
            cur["scores"].append(s)
            cur["times"].append(t)
        done = finish()
        if done is not None:
            yield done


@dataclass
class AudioPrediction:
    files: list[FileResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def detections(self) -> list[Detection]:
        return [d for f in self.files for d in f.detections]


def predict_audio(artifact: Path | str, inputs: Path | str, **kwargs) -> AudioPrediction:
    """Every file's detections at once (``AudioPredictor`` arguments); ``AudioPredictor.run`` streams them."""
    p = AudioPredictor(artifact, inputs, **kwargs)
    files = list(p.run())
    return AudioPrediction(files, list(p.skipped), p.info)


__all__ = ["DEFAULT_MIN_CONF", "AudioPrediction", "AudioPredictor", "Detection", "FileResult", "LocationFilter",
           "list_audio", "location_filter", "predict_audio", "split_label"]

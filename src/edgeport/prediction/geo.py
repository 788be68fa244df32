"""Geo model predictions: (latitude, longitude, week) -> species with their probability there, named from
the labels file beside the artifact (``code<TAB>scientific<TAB>common``, ``families/geo/labels.py``)."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, DataError, SourceError
from edgeport.families.geo.labels import LABELS_FILENAME, Label, read_labels

log = logging.getLogger(__name__)

#: the geo family's weeks (48 per year, 4 a month)
WEEKS = 48
DEFAULT_THRESHOLD = 0.03


def check_point(lat: float, lon: float, week: float, where: str = "") -> None:
    """ConfigError naming the value out of range (latitude -90..90, longitude -180..180, week 1..48)."""
    for name, v, lo, hi in (("latitude", lat, -90.0, 90.0), ("longitude", lon, -180.0, 180.0),
                            ("week", week, 1.0, float(WEEKS))):
        if not np.isfinite(v) or not lo <= v <= hi:
            raise ConfigError(f"{where}{name} {v:g} is outside {lo:g}..{hi:g}")


def read_points(path: Path | str) -> np.ndarray:
    """(n, 3) float32 [lat, lon, week] from a CSV with a ``lat,lon,week`` header (``latitude``/``longitude``
    also accepted) or three numbers a row. Every bad row is named in one DataError line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Points file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path} holds no points: give lat,lon,week rows")
    aliases = {"lat": 0, "latitude": 0, "lon": 1, "lng": 1, "longitude": 1, "week": 2}
    head = [c.strip().lower() for c in rows[0][1]]
    order = [0, 1, 2]
    if all(h in aliases for h in head) and len(head) == 3:
        order = [head.index(next(h for h in head if aliases[h] == k)) for k in range(3)]
        rows = rows[1:]
    points, bad = [], []
    for lineno, r in rows:
        try:
            if len(r) != 3:
                raise ValueError(f"{len(r)} fields")
            p = [float(r[order[k]]) for k in range(3)]
            check_point(*p)
        except (ValueError, ConfigError) as e:
            bad.append(f"line {lineno} ({e})")
            continue
        points.append(p)
    if bad:
        shown = "; ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise DataError(f"{path}: {len(bad)} bad row(s): {shown}; each row needs lat (-90..90), lon (-180..180), "
                        f"week (1..{WEEKS})")
    if not points:
        raise DataError(f"{path} holds a header but no points: give lat,lon,week rows")
    return np.asarray(points, dtype=np.float32)


@dataclass
class SpeciesScore:
    code: str
    scientific_name: str
    common_name: str
    probability: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class GeoPredictor:
    """An opened geo artifact (``.onnx``, ``.tflite``, SavedModel) with its labels: ``probabilities(points)``.

    ``labels``: the labels file (default: ``labels.txt`` beside the artifact, as ``edgeport export`` writes)."""

    def __init__(self, artifact: Path | str, *, labels: Path | str | None = None, threads: int | None = None,
                 batch_size: int = 256):
        from edgeport.runtimes import open_runner, runtime_for_path

        self.artifact = Path(artifact)
        if not self.artifact.exists():
            raise SourceError(f"Geo artifact not found: {self.artifact}")
        labels_path = Path(labels) if labels else self.artifact.parent / LABELS_FILENAME
        if not labels_path.is_file():
            raise DataError(f"No labels file for {self.artifact.name} (looked for {labels_path}): pass --labels "
                            "labels.txt (code<TAB>scientific name<TAB>common name)")
        self.labels: list[Label] = read_labels(labels_path)
        self.labels_path = labels_path
        runtime = runtime_for_path(self.artifact)
        self.runner = open_runner(runtime, self.artifact, **({"threads": threads} if threads else {}))
        if len(self.runner.inputs) != 1 or tuple(self.runner.inputs[0].shape[1:]) not in ((3,), (None,)):
            shapes = [tuple(t.shape) for t in self.runner.inputs]
            raise ConfigError(f"{self.artifact.name} takes inputs {shapes}; a geo model takes one (N, 3) input "
                              "[lat, lon, week]")
        self.batch_size = batch_size
        self.sigmoid_reason: str | None = None

    def probabilities(self, points) -> np.ndarray:
        """(n, n_species) probabilities for (n, 3) [lat, lon, week] rows (logits get the sigmoid, as evaluate)."""
        from edgeport.evaluation.evaluate import ScoringState, score_segments

        pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        state = ScoringState()
        segs = [(0, {self.runner.inputs[0].name: pts})]
        (_, probs), = score_segments(self.runner, segs, len(self.labels), batch_size=self.batch_size,
                                     apply_sigmoid=None, state=state)
        self.sigmoid_reason = state.reason
        if not np.all(np.isfinite(probs)):
            raise DataError(f"{self.artifact.name} failed on {int((~np.isfinite(probs).all(1)).sum())} point(s)")
        return probs

    def species(self, probs_row: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[SpeciesScore]:
        """Species of one row at or above ``threshold``, most probable first."""
        order = np.argsort(-probs_row, kind="stable")
        return [SpeciesScore(self.labels[j].code, self.labels[j].scientific, self.labels[j].common,
                             float(probs_row[j])) for j in order if probs_row[j] >= threshold]


def check_threshold(value: float, flag: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{flag} must be between 0 and 1, got {value:g}")


def predict_geo(artifact: Path | str, points, *, threshold: float = DEFAULT_THRESHOLD,
                labels: Path | str | None = None, threads: int | None = None) -> list[dict]:
    """``[{"lat", "lon", "week", "species": [SpeciesScore dicts, most probable first]}]`` per point."""
    check_threshold(threshold, "--threshold")
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    for i, p in enumerate(pts):
        check_point(*map(float, p), where=f"point {i + 1}: " if len(pts) > 1 else "")
    geo = GeoPredictor(artifact, labels=labels, threads=threads)
    probs = geo.probabilities(pts)
    return [{"lat": float(p[0]), "lon": float(p[1]), "week": float(p[2]),
             "species": [s.to_dict() for s in geo.species(row, threshold)]} for p, row in zip(pts, probs, strict=True)]


__all__ = ["DEFAULT_THRESHOLD", "WEEKS", "GeoPredictor", "SpeciesScore", "check_point", "check_threshold",
           "predict_geo", "read_points"]

"""Detection tables: per-recording CSV, Raven Pro selection tables, the combined CSV, geo species lists.

Every file is written atomically (``fileio``): a reader never sees half a table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from edgeport.fileio import atomic_write_text
from edgeport.prediction.audio import Detection

#: columns of the per-recording and combined CSVs
CSV_COLUMNS = ("file", "start_s", "end_s", "label", "scientific_name", "common_name", "confidence")
#: the columns of a Raven Pro selection table (tab-separated, one selection per detection)
RAVEN_COLUMNS = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                 "High Freq (Hz)", "Species Code", "Common Name", "Scientific Name", "Confidence",
                 "Begin Path", "File Offset (s)", "Begin File")
CSV_SUFFIX = ".edgeport.results.csv"
RAVEN_SUFFIX = ".edgeport.selection.table.txt"
COMBINED_CSV = "edgeport_predictions.csv"
RTYPES = ("csv", "raven", "both")


def _text(rows: Iterable[Sequence], header: Sequence[str], delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def csv_rows(dets: Iterable[Detection]) -> list[tuple]:
    return [(d.file, f"{d.start_s:.3f}", f"{d.end_s:.3f}", d.label, d.scientific_name, d.common_name,
             f"{d.confidence:.4f}") for d in dets]


def write_csv(path: Path, dets: Iterable[Detection]) -> Path:
    atomic_write_text(path, _text(csv_rows(dets), CSV_COLUMNS))
    return path


def raven_text(dets: Sequence[Detection], audio_path: Path, sample_rate: int) -> str:
    """A Raven selection table: tab-separated, one selection per detection on the spectrogram view of
    channel 1, spanning 0 Hz to the model's Nyquist frequency."""
    for d in dets:
        for v in (d.label, d.common_name, d.scientific_name):
            if "\t" in v or "\n" in v:
                raise ValueError(f"label {v!r} holds a tab or newline: not writable to a Raven table")
    rows = [(k, "Spectrogram 1", 1, f"{d.start_s:.3f}", f"{d.end_s:.3f}", 0, sample_rate // 2, d.label,
             d.common_name or d.label, d.scientific_name, f"{d.confidence:.4f}", str(audio_path),
             f"{d.start_s:.3f}", audio_path.name) for k, d in enumerate(dets, start=1)]
    return _text(rows, RAVEN_COLUMNS, delimiter="\t")


def output_name(file_id: str, suffix: str) -> str:
    """``a/b/rec.wav`` -> ``a/b/rec<suffix>`` (the input's folder layout is kept under the output folder)."""
    p = Path(file_id)
    return str(p.with_name(p.stem + suffix))


def write_file_tables(outdir: Path, result, rtype: str, sample_rate: int) -> list[Path]:
    """The tables of one recording (``FileResult``) under ``outdir``; ``rtype`` csv, raven or both."""
    written = []
    if rtype in ("csv", "both"):
        p = outdir / output_name(result.file, CSV_SUFFIX)
        p.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_csv(p, result.detections))
    if rtype in ("raven", "both"):
        p = outdir / output_name(result.file, RAVEN_SUFFIX)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, raven_text(result.detections, result.path, sample_rate))
        written.append(p)
    return written


GEO_CSV_COLUMNS = ("lat", "lon", "week", "code", "scientific_name", "common_name", "probability")


def geo_csv_text(points: list[dict]) -> str:
    rows = [(f"{p['lat']:g}", f"{p['lon']:g}", f"{p['week']:g}", s["code"], s["scientific_name"], s["common_name"],
             f"{s['probability']:.4f}") for p in points for s in p["species"]]
    return _text(rows, GEO_CSV_COLUMNS)


__all__ = ["COMBINED_CSV", "CSV_COLUMNS", "CSV_SUFFIX", "GEO_CSV_COLUMNS", "RAVEN_COLUMNS", "RAVEN_SUFFIX", "RTYPES",
           "csv_rows", "geo_csv_text", "output_name", "raven_text", "write_csv", "write_file_tables"]

"""``edgeport predict`` on recordings with whistles planted at known offsets, scored by a band detector whose
scores are a known function of its input (conftest ``band_detector``): detection times, the tail chunk,
Raven tables, the location filter, streaming of long files, unreadable files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from edgeport.cli.main import main
from tests.prediction.conftest import BAND_CLASSES, BAND_SR, planted_recording

#: (class, onset s, duration s) in a 12.3 s recording: chunks are 0.5 s
PLANTS = ((0, 2.27, 0.21), (1, 5.02, 0.46), (2, 8.60, 0.30), (0, 12.05, 0.23))
SECONDS = 12.3


def expected(step: float, chunk: float = 0.5, seconds: float = SECONDS) -> set[tuple[str, float, float]]:
    """(label, start, end) of every chunk a planted whistle fills by at least 25% (the detector's r > 0.15 with
    room); the plants are placed so that no chunk is filled by between 5% and 25%."""
    starts = list(np.arange(0.0, seconds - chunk + 1e-9, step))
    if starts[-1] + chunk < seconds - 1e-9:
        starts.append(seconds - chunk)  # the tail chunk (chunking.chunk_starts)
    out = set()
    for s in starts:
        for c, onset, dur in PLANTS:
            frac = max(0.0, min(s + chunk, onset + dur) - max(s, onset)) / chunk
            assert not 0.05 < frac < 0.25, ("ambiguous plant", s, onset)
            if frac >= 0.25:
                out.add((BAND_CLASSES[c][0], round(s, 3), round(min(s + chunk, seconds), 3)))
    return out


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def recordings(tmp_path):
    d = tmp_path / "recordings"
    d.mkdir()
    planted_recording(d / "site1.wav", PLANTS, SECONDS)
    return d


@pytest.mark.parametrize("overlap", [0.0, 0.25])
def test_detections_at_the_planted_offsets(band_detector, recordings, tmp_path, overlap):
    out = tmp_path / "out"
    assert main(["predict", str(band_detector), "--input", str(recordings), "--outdir", str(out), "--overlap",
                 str(overlap), "--min-conf", "0.5", "--no-progress"]) == 0
    rows = _rows(out / "site1.edgeport.results.csv")
    got = {(r["label"], float(r["start_s"]), float(r["end_s"])) for r in rows}
    want = expected(0.5 - overlap)
    assert got == want
    assert len(rows) == len(want)  # one class per chunk here
    assert (BAND_CLASSES[0][0], 11.8, 12.3) in got  # the tail chunk ends where the audio ends
    r0 = next(r for r in rows if r["label"] == BAND_CLASSES[0][0])
    assert (r0["scientific_name"], r0["common_name"]) == ("Genus ubiquus", "Everywhere Bird")
    assert all(float(r["confidence"]) > 0.9 for r in rows)
    assert _rows(out / "edgeport_predictions.csv") == rows
    summary = json.loads((out / "edgeport_predict.json").read_text())
    assert summary["apply_sigmoid"] is False and summary["files"]["skipped"] == []
    assert summary["per_file"][0]["duration_s"] == pytest.approx(SECONDS)


def test_min_conf_and_top_k(band_detector, recordings, tmp_path):
    from edgeport.prediction.audio import predict_audio

    every = predict_audio(band_detector, recordings, min_conf=0.0)
    assert len(every.detections) == every.info["chunks"] * len(BAND_CLASSES)  # every chunk, every class
    top1 = predict_audio(band_detector, recordings, min_conf=0.0, top_k=1)
    assert len(top1.detections) == every.info["chunks"]
    best = {}
    for d in every.detections:
        if d.confidence > best.get(d.start_s, (None, -1.0))[1]:
            best[d.start_s] = (d.label, d.confidence)
    assert {d.start_s: (d.label, d.confidence) for d in top1.detections} == best


def test_raven_selection_table(band_detector, recordings, tmp_path):
    from edgeport.prediction.tables import RAVEN_COLUMNS

    out = tmp_path / "out"
    assert main(["predict", str(band_detector), "--input", str(recordings), "--outdir", str(out), "--rtype", "both",
                 "--min-conf", "0.5", "--no-progress"]) == 0
    text = (out / "site1.edgeport.selection.table.txt").read_text()
    lines = text.split("\n")
    assert lines[-1] == "" and "\r" not in text  # newline-terminated rows
    table = [ln.split("\t") for ln in lines[:-1]]
    header = table[0]
    assert header == list(RAVEN_COLUMNS)
    assert header[:7] == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                          "High Freq (Hz)"]
    body = [dict(zip(header, r, strict=True)) for r in table[1:]]
    csv_rows = _rows(out / "site1.edgeport.results.csv")
    assert len(body) == len(csv_rows) == len(expected(0.5))
    for k, (r, c) in enumerate(zip(body, csv_rows, strict=True), start=1):
        assert r["Selection"] == str(k) and r["View"] == "Spectrogram 1" and r["Channel"] == "1"
        assert (r["Begin Time (s)"], r["End Time (s)"]) == (c["start_s"], c["end_s"])
        assert float(r["Low Freq (Hz)"]) == 0 and float(r["High Freq (Hz)"]) == BAND_SR / 2
        assert (r["Species Code"], r["Common Name"], r["Scientific Name"]) == (
            c["label"], c["common_name"], c["scientific_name"])
        assert r["Confidence"] == c["confidence"] and r["Begin File"] == "site1.wav"


def test_location_filter(band_detector, geo_like_onnx, recordings, tmp_path, capsys):
    base, filt = tmp_path / "all", tmp_path / "filtered"
    common = ["predict", str(band_detector), "--input", str(recordings), "--min-conf", "0.5", "--overlap", "0.25",
              "--no-progress"]
    assert main([*common, "--outdir", str(base)]) == 0
    assert main([*common, "--outdir", str(filt), "--lat", "42.4", "--lon", "-76.5", "--week", "20",
                 "--geo-model", str(geo_like_onnx)]) == 0
    everything, kept = _rows(base / "edgeport_predictions.csv"), _rows(filt / "edgeport_predictions.csv")
    nowhere = BAND_CLASSES[1][0]  # the geo-like model gives Genus nullus sigmoid(-6) = 0.0025 < 0.03
    n_nowhere = sum(r["label"] == nowhere for r in everything)
    assert n_nowhere == 3  # class 1 fills 3 chunks of 0.5 s every 0.25 s
    assert kept == [r for r in everything if r["label"] != nowhere]
    assert {r["label"] for r in kept} == {BAND_CLASSES[0][0], BAND_CLASSES[2][0]}
    s = json.loads((filt / "edgeport_predict.json").read_text())
    assert s["detections_removed_by_location"] == n_nowhere
    assert s["location_filter"]["classes_removed"] == [nowhere]
    assert s["location_filter"]["classes_unmatched"] == [BAND_CLASSES[2][0]]
    assert "3 detection(s) removed, 1 class(es) not expected there, 1 class(es) without a match" in capsys.readouterr().out
    # a threshold above Genus ubiquus' 0.95 removes it too
    assert main([*common, "--outdir", str(tmp_path / "f2"), "--lat", "42.4", "--lon", "-76.5", "--week", "20",
                 "--geo-model", str(geo_like_onnx), "--geo-threshold", "0.96"]) == 0
    assert {r["label"] for r in _rows(tmp_path / "f2" / "edgeport_predictions.csv")} == {BAND_CLASSES[2][0]}


def test_long_file_is_streamed_in_blocks_with_the_same_result(band_detector, tmp_path):
    """A 40 s recording at 22.05 kHz read in 7 s blocks (resampled per block) gives the chunks and scores of
    reading it whole, and the inputs of the whole-file input builder (frontends.model_input_from_audio)."""
    from edgeport.evaluation.audio import iter_model_inputs
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.prediction.audio import predict_audio
    from tests.prediction.conftest import band_config

    plants = [(c, 3.0 + 3.3 * k, 0.4) for k, c in enumerate([0, 1, 2] * 3)]
    rec = planted_recording(tmp_path / "long.wav", plants, 40.0, sr=22050)
    whole = predict_audio(band_detector, rec, min_conf=0.0, overlap=0.1)
    blocks = predict_audio(band_detector, rec, min_conf=0.0, overlap=0.1, block_seconds=7.0)
    assert len(whole.detections) == len(blocks.detections) > 0
    for a, b in zip(whole.detections, blocks.detections, strict=True):
        assert (a.label, a.start_s, a.end_s) == (b.label, b.start_s, b.end_s)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-6)
    cfg = band_config()
    parts = list(iter_model_inputs(rec, cfg, overlap=0.2, block_seconds=7.0, group=16))
    assert len(parts) > 2
    x, t = model_input_from_audio(rec, cfg, overlap=0.2, return_times=True)
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), x, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), t)
    hits = {d.start_s for d in whole.detections if d.confidence > 0.5}
    assert all(any(abs(s - onset) < 0.5 for s in hits) for _, onset, _ in plants)


def test_unreadable_file_is_skipped_and_listed(band_detector, recordings, tmp_path, capsys):
    (recordings / "broken.wav").write_bytes(b"RIFF....not a wave file")
    out = tmp_path / "out"
    assert main(["predict", str(band_detector), "--input", str(recordings), "--outdir", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable file(s)" in printed and "broken.wav" in printed
    s = json.loads((out / "edgeport_predict.json").read_text())
    assert s["files"]["predicted"] == 1 and len(s["files"]["skipped"]) == 1
    assert s["files"]["skipped"][0].startswith("broken.wav: ")
    assert not (out / "broken.edgeport.results.csv").exists()
    assert (out / "site1.edgeport.results.csv").exists()


def test_only_unreadable_files_is_one_line_exit_2(band_detector, tmp_path, capsys):
    d = tmp_path / "recordings"
    d.mkdir()
    (d / "broken.wav").write_bytes(b"RIFF....not a wave file")
    out = tmp_path / "out"
    assert main(["predict", str(band_detector), "--input", str(d), "--outdir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgeport predict: error: none of the 1 audio file(s) could be read")
    assert "broken.wav" in err[0]
    assert not out.exists()

"""``edgeport predict`` on a geo model with known outputs, and bad input: one line each, exit 2, nothing written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from edgeport.cli.main import main
from tests.prediction.conftest import GEO_SPECIES, known_probabilities


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("edgeport predict: error: ")
    return err[0]


def test_geo_species_at_a_point_sorted_with_names(geo_like_onnx, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", str(geo_like_onnx), "--lat", "42.4", "--lon", "-76.5", "--week", "20", "--outdir", str(out)])
    assert rc == 0
    got = json.loads((out / "edgeport_species.json").read_text())["points"]
    assert len(got) == 1 and got[0]["lat"] == pytest.approx(42.4)
    p = known_probabilities(np.array([[42.4, -76.5, 20.0]]))[0]
    want = [j for j in np.argsort(-p) if p[j] >= 0.03]  # species 0, 2, 3 (1 is 0.0025)
    assert [s["code"] for s in got[0]["species"]] == [GEO_SPECIES[j][0] for j in want] == ["sp0003", "sp0001", "sp0004"]
    for s, j in zip(got[0]["species"], want, strict=True):
        assert s["probability"] == pytest.approx(p[j], abs=1e-6)
        assert (s["scientific_name"], s["common_name"]) == GEO_SPECIES[j][1:3]
    assert "Genus borealis (Northern Bird)" in capsys.readouterr().out


def test_geo_points_file_to_csv_with_threshold(geo_like_onnx, tmp_path):
    pts = tmp_path / "points.csv"
    pts.write_text("lat,lon,week\n42.4,-76.5,20\n0,10,1\n")
    out = tmp_path / "out"
    assert main(["predict", str(geo_like_onnx), "--points", str(pts), "--threshold", "0.5", "--format", "csv",
                 "--outdir", str(out)]) == 0
    with open(out / "edgeport_species.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # at the equator species 2 (Northern) is sigmoid(-4) = 0.018 < 0.5: only species 0 there
    assert [(r["lat"], r["code"]) for r in rows] == [("42.4", "sp0003"), ("42.4", "sp0001"), ("0", "sp0001")]
    p = known_probabilities(np.array([[0.0, 10.0, 1.0]]))[0]
    assert float(rows[-1]["probability"]) == pytest.approx(p[0], abs=1e-4)


def test_points_file_with_bad_rows_is_one_line_exit_2(geo_like_onnx, tmp_path, capsys):
    pts = tmp_path / "points.csv"
    pts.write_text("lat,lon,week\n42.4,-76.5,20\n95,0,3\n10,abc,2\n1,2\n")
    out = tmp_path / "out"
    assert main(["predict", str(geo_like_onnx), "--points", str(pts), "--outdir", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "3 bad row(s)" in line and "line 3" in line and "line 4" in line and "line 5" in line
    assert not out.exists()


@pytest.mark.parametrize("argv, words", [
    (["--lat", "42", "--lon", "-76"], "--lat, --lon and --week go together"),
    (["--lat", "42", "--lon", "-76", "--week", "60"], "week 60 is outside 1..48"),
    ([], "nothing to predict on"),
])
def test_bad_place_is_one_line_exit_2(geo_like_onnx, tmp_path, capsys, argv, words):
    assert main(["predict", str(geo_like_onnx), "--outdir", str(tmp_path / "out"), *argv]) == 2
    assert words in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def _fake_audio_artifact(d, with_config: bool):
    from edgeport.families.audio.model_config import (
        AudioModelConfig,
        write_model_config,
    )

    d.mkdir()
    art = d / "model.onnx"
    art.write_bytes(b"not run: the input check comes first")
    if with_config:
        write_model_config(AudioModelConfig(num_classes=2, class_names=("a", "b")), d / "model_model_config.json")
    return art


def test_folder_without_audio_is_one_line_exit_2(tmp_path, capsys):
    art = _fake_audio_artifact(tmp_path / "m", with_config=True)
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "notes.txt").write_text("no audio here")
    out = tmp_path / "out"
    assert main(["predict", str(art), "--input", str(folder), "--outdir", str(out)]) == 2
    assert f"No audio files in {folder}" in _one_error_line(capsys)
    assert not out.exists()


def test_artifact_without_config_is_one_line_exit_2(tmp_path, capsys):
    art = _fake_audio_artifact(tmp_path / "m", with_config=False)
    rec = tmp_path / "rec.wav"
    from edgeport.audio.io import write_wav

    write_wav(rec, np.zeros(1600, np.float32), 16000)
    out = tmp_path / "out"
    assert main(["predict", str(art), "--input", str(rec), "--outdir", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "No model config found for model.onnx" in line and "--model-config" in line
    assert not out.exists()


def test_geo_filter_needs_a_geo_model(tmp_path, capsys):
    art = _fake_audio_artifact(tmp_path / "m", with_config=True)
    assert main(["predict", str(art), "--input", str(tmp_path), "--lat", "1", "--lon", "2", "--week", "3",
                 "--outdir", str(tmp_path / "out")]) == 2
    assert "add --geo-model" in _one_error_line(capsys)


def test_split_label():
    from edgeport.prediction.audio import split_label

    assert split_label("Turdus merula_Eurasian Blackbird") == ("Turdus merula", "Eurasian Blackbird")
    assert split_label("sp00_upsweep") == ("", "")
    assert split_label("Turdus merula") == ("", "")

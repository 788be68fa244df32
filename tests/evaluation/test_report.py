"""Report files: JSON without NaN, CSVs that hold the scores, PNGs, a self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import json
import re

import numpy as np
import pytest

from edgeport.evaluation import evaluate_scores
from edgeport.evaluation.report import OUTPUT_FILES, write_reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(7)
    names = ["Turdus merula", "Parus major, adult", "Erithacus rubecula"]  # a comma in a name: CSV quoting
    n = 30
    y = np.zeros((n, 3))
    y[np.arange(24), np.arange(24) % 3] = 1
    y[0, 1] = 1  # one multi-label file
    chunks, times = [], []
    for i in range(n):
        k = 1 + i % 3
        chunks.append(np.clip(0.5 * rng.random((k, 3)) + 0.45 * y[i], 0, 1))
        times.append(np.stack([np.arange(k) * 1.5, np.arange(k) * 1.5 + 3.0], axis=1))
    chunks[2][0] = np.nan  # a failed chunk
    return evaluate_scores([f"clips/{i}.flac" for i in range(n)], chunks, times, y, names, pooling="lme",
                           species_report=True, n_boot=100, info={"artifact": "model_quantized.tflite"})


def test_every_output_written(tmp_path, result):
    paths = write_reports(result, tmp_path / "out", stem="eval")
    assert set(paths) == set(OUTPUT_FILES)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())  # no temp files

    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["summary"]["cmap"] == pytest.approx(result.metrics["cmap"])
    assert data["chunks"] == {"total": result.total_chunks, "failed": 1}
    assert data["pooling"]["lme_sharpness"] == 10.0
    assert data["metrics"]["per_class"][0]["ap_ci_low"] is not None

    with paths["files_csv"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and rows[0]["labels"] == "Turdus merula;Parus major, adult"
    got = np.array([[float(r[c]) for c in result.class_names] for r in rows])
    np.testing.assert_allclose(got, result.file_scores, rtol=1e-5)
    assert rows[2]["failed_chunks"] == "1" and rows[2]["n_chunks"] == "3"

    with paths["chunks_csv"].open(newline="") as f:
        crows = list(csv.DictReader(f))
    assert len(crows) == result.total_chunks
    assert crows[0]["start_s"] == "0" and crows[0]["end_s"] == "3"
    failed = [r for r in crows if r["failed"] == "1"]
    assert len(failed) == 1 and failed[0]["file"] == "clips/2.flac" and failed[0]["Turdus merula"] == ""
    x = next(r for r in crows if r["file"] == "clips/5.flac" and r["chunk"] == "2")
    assert float(x["start_s"]) == 3.0
    assert float(x["Erithacus rubecula"]) == pytest.approx(result.chunk_scores[5][2, 2], rel=1e-5)

    for k in ("confusion_png", "det_png"):
        assert paths[k].read_bytes()[:8] == PNG_MAGIC

    page = paths["html"].read_text()
    assert "model_quantized.tflite" in page and "Parus major, adult" in page
    assert not re.search(r"(src|href)=\"(https?:|//|/)", page) and "<script" not in page and "<link" not in page
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) == 2 and all(base64.b64decode(b)[:8] == PNG_MAGIC for b in imgs)
    assert "95% CI" in page and "1 chunks failed" in page


def test_without_plots(tmp_path, result):
    paths = write_reports(result, tmp_path, plots=False)
    assert "det_png" not in paths and not (tmp_path / "evaluation_det.png").exists()
    assert "data:image/png" not in paths["html"].read_text()

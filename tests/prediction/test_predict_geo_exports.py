"""``edgeport predict`` on the session's geo checkpoint exported to every format: the species lists are the
source model's probabilities (FP32 ONNX, TFLite and SavedModel), named from the exported labels.txt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.integration]

POINTS = np.array([[42.4, -76.5, 20.0], [-33.9, 151.2, 1.0], [0.0, 0.0, 48.0], [70.0, 20.0, 26.0]], np.float32)


@pytest.mark.parametrize("fmt_name", ["onnx", "tflite", "tf"])
def test_geo_predict_matches_the_source(fmt_name, geo_export_all, geo_checkpoint, tmp_path):
    from edgeport.exporters import FORMATS
    from edgeport.families.geo.labels import read_labels
    from edgeport.runtimes import runner_class
    from edgeport.sources import load_source

    handle = load_source(geo_checkpoint)
    ref, failed = runner_class("torch").from_handle(handle).run({handle.inputs[0].name: POINTS})
    assert not failed.any()
    probs = next(iter(ref.values()))
    artifact = geo_export_all / FORMATS.get(fmt_name).artifact_name(handle.name)
    pts = tmp_path / "points.csv"
    pts.write_text("latitude,longitude,week\n" + "".join(f"{a:g},{b:g},{c:g}\n" for a, b, c in POINTS))
    out = tmp_path / "out"
    assert main(["predict", str(artifact), "--points", str(pts), "--threshold", "0.1", "--outdir", str(out)]) == 0
    got = json.loads((out / "edgeport_species.json").read_text())["points"]
    labels = read_labels(geo_export_all / "labels.txt")
    assert len(got) == len(POINTS)
    for p, row in zip(got, probs, strict=True):
        want = [j for j in np.argsort(-row, kind="stable") if row[j] >= 0.1]
        codes = [s["code"] for s in p["species"]]
        # same species set (a probability within 1e-4 of the threshold may fall either side)
        near = {labels[j].code for j in range(len(row)) if abs(row[j] - 0.1) < 1e-4}
        assert set(codes) - near == {labels[j].code for j in want} - near
        for s in p["species"]:
            j = next(k for k, lab in enumerate(labels) if lab.code == s["code"])
            assert s["probability"] == pytest.approx(float(row[j]), abs=1e-4)
            assert (s["scientific_name"], s["common_name"]) == (labels[j].scientific, labels[j].common)
        assert [s["probability"] for s in p["species"]] == sorted((s["probability"] for s in p["species"]), reverse=True)

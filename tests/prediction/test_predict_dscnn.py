"""``edgeport predict`` on the session's tiny trained DS-CNN as .keras, fixed-batch FP32 .tflite and an FP32
.onnx of its logits (the ``edgeport evaluate`` test's artifacts): the three give the same detections, the
sigmoid is applied to the logits, and predict's chunk scores are evaluate's."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from edgeport.cli.main import main
from tests.evaluation.test_cli_evaluate import artifacts  # noqa: F401 - the converted artifacts, built once
from tests.training.conftest import tiny_data, tiny_run  # noqa: F401 - the session's model, built once

pytestmark = [pytest.mark.slow, pytest.mark.integration]

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """6 s of synthetic calls (one clip per species of the training data's generator, end to end)."""
    from edgeport.audio.io import write_wav
    from edgeport.audio.synthetic import CallSynth, SyntheticSpec, make_clip

    spec = SyntheticSpec(n_species=3, duration=2.0, sample_rate=16000, difficulty=0.0, snr_db=(5.0, 20.0))
    rng = np.random.default_rng(7)
    x = np.concatenate([make_clip(CallSynth(spec), i, rng) for i in range(3)])
    d = tmp_path_factory.mktemp("dscnn_rec")
    write_wav(d / "calls.wav", x, 16000)
    return d / "calls.wav"


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_three_formats_same_detections(artifacts, recording, tmp_path):  # noqa: F811
    got = {}
    for kind in ("keras", "tflite", "onnx"):
        out = tmp_path / kind
        assert main(["predict", str(artifacts[kind]), "--input", str(recording), "--outdir", str(out),
                     "--min-conf", "0.0", "--overlap", "0.25", "--no-progress"]) == 0
        got[kind] = _rows(out / "edgeport_predictions.csv")
    n_chunks = len(np.arange(0.0, 6.0 - 0.5 + 1e-9, 0.25))
    assert len(got["keras"]) == n_chunks * 3  # min-conf 0: every class of every chunk
    for kind in ("tflite", "onnx"):
        assert [(r["start_s"], r["end_s"], r["label"]) for r in got[kind]] == \
            [(r["start_s"], r["end_s"], r["label"]) for r in got["keras"]]
        diff = max(abs(float(a["confidence"]) - float(b["confidence"])) for a, b in zip(got[kind], got["keras"], strict=True))
        assert diff <= 1e-4, kind  # the tables round to 4 decimals


def test_predict_scores_are_evaluates(artifacts, recording):  # noqa: F811
    """The ONNX artifact ends in logits: predict applies the sigmoid as evaluate decides it, and its chunk
    scores are those of evaluate's path (``evaluate_runner`` on ``file_inputs``)."""
    from edgeport.evaluation.audio import file_inputs
    from edgeport.evaluation.evaluate import evaluate_runner
    from edgeport.prediction.audio import AudioPredictor

    p = AudioPredictor(artifacts["onnx"], recording, min_conf=0.0)
    (res,) = list(p.run())
    assert p.info["apply_sigmoid"] is True and "logits" in p.info["sigmoid_decision"]
    scores = np.zeros((res.chunks, 3))
    names = list(artifacts["cfg"].class_names)
    for d in res.detections:
        scores[round(d.start_s / 0.5), names.index(d.label)] = d.confidence
    import json

    x, t, err = file_inputs((recording, json.dumps(artifacts["cfg"].to_dict()), 0.0, None))
    assert err is None
    ev = evaluate_runner(p.runner, [("calls.wav", np.ones(3), x, t)], names, apply_sigmoid=None, progress=False,
                         n_boot=0)
    np.testing.assert_allclose(scores, ev.chunk_scores[0], atol=1e-9)
    np.testing.assert_allclose([[d.start_s, d.end_s] for d in res.detections[::3]], t)

"""A hand-built geo-like ONNX model whose outputs are known in closed form: (N, 3) [lat, lon, week] ->
sigmoid(x @ W + b), with labels.txt beside it (built in milliseconds, no training)."""

from __future__ import annotations

import numpy as np
import pytest

#: (code, scientific, common, weight on lat, bias): species 0 everywhere, 1 nowhere, 2 in the north, 3 rare
GEO_SPECIES = (
    ("sp0001", "Genus ubiquus", "Everywhere Bird", 0.0, 3.0),
    ("sp0002", "Genus nullus", "Nowhere Bird", 0.0, -6.0),
    ("sp0003", "Genus borealis", "Northern Bird", 0.2, -4.0),
    ("sp0004", "Genus rarus", "Rare Bird", 0.0, -2.0),
)


def known_probabilities(points: np.ndarray) -> np.ndarray:
    w = np.array([s[3] for s in GEO_SPECIES])
    b = np.array([s[4] for s in GEO_SPECIES])
    return 1.0 / (1.0 + np.exp(-(np.asarray(points, np.float64)[:, :1] * w + b)))


@pytest.fixture(scope="session")
def geo_like_onnx(tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from edgeport.families.geo.labels import write_labels

    d = tmp_path_factory.mktemp("geo_like")
    w = np.zeros((3, len(GEO_SPECIES)), np.float32)
    w[0] = [s[3] for s in GEO_SPECIES]
    b = np.array([s[4] for s in GEO_SPECIES], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "b"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["probabilities"])],
        "geo_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(GEO_SPECIES)])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = d / "geo_like.onnx"
    onnx.save(model, str(path))
    write_labels(d / "labels.txt", [s[:3] for s in GEO_SPECIES])
    return path


# ----------------------------------------------------------------------------- a band detector (audio)

#: the detector's classes: a tone at this frequency (Hz) is that class; the names match the geo-like labels
#: by scientific name (0: expected everywhere, 1: nowhere) or not at all (2)
BAND_CLASSES = (("Genus ubiquus_Everywhere Bird", 1000.0), ("Genus nullus_Nowhere Bird", 3000.0),
                ("Nomatch species_Unmatched Bird", 5000.0))
BAND_SR, BAND_CHUNK_S = 16000, 0.5


def band_config():
    from edgeport.families.audio.model_config import AudioModelConfig

    return AudioModelConfig(sample_rate=BAND_SR, chunk_duration=BAND_CHUNK_S, spec_width=32, fft_length=256,
                            num_mels=16, audio_frontend="hybrid", mag_scale="pwl", num_classes=len(BAND_CLASSES),
                            class_names=tuple(c for c, _ in BAND_CLASSES))


def tone(freq: float, seconds: float, sr: int = BAND_SR, seed: int = 0) -> np.ndarray:
    """A steady whistle of ``audio.synthetic.make_call`` (+-40 Hz around ``freq``), peak ~0.9."""
    from edgeport.audio.synthetic import make_call

    return 0.9 * make_call("whistle", freq, 1000.0, seconds, sr, np.random.default_rng(seed))


@pytest.fixture(scope="session")
def band_detector(tmp_path_factory):
    """``detector.onnx`` + ``detector_model_config.json``: the hybrid frontend's STFT magnitude (bins, frames, 1)
    -> per class, the mean magnitude in +-150 Hz around its tone relative to a full-chunk tone's, ``r`` ->
    ``sigmoid(40 (r - 0.15))``. A chunk half filled by a tone scores ~1 for its class, a chunk of quiet noise ~0.
    The scores are a known function of the input, so detection times can be checked exactly."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from edgeport.families.audio.contract import features
    from edgeport.families.audio.model_config import write_model_config

    cfg = band_config()
    bins = np.fft.rfftfreq(cfg.fft_length, 1.0 / cfg.sample_rate)
    n_pad = cfg.input_shape[0]
    w = np.zeros((n_pad, len(BAND_CLASSES)), np.float32)
    for c, (_, f) in enumerate(BAND_CLASSES):
        sel = np.flatnonzero(np.abs(bins - f) <= 150.0)
        full = features(tone(f, cfg.chunk_duration), cfg)[..., 0].mean(axis=1)[sel].mean()
        w[sel, c] = 40.0 / (len(sel) * full)
    b = np.full(len(BAND_CLASSES), -40.0 * 0.15, np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "W"], ["z"]),
         helper.make_node("Add", ["z", "b"], ["logit"]),
         helper.make_node("Sigmoid", ["logit"], ["scores"])],
        "band_detector",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *cfg.input_shape])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", len(BAND_CLASSES)])],
        initializer=[numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
                     numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    d = tmp_path_factory.mktemp("band_detector")
    onnx.save(model, str(d / "detector.onnx"))
    write_model_config(cfg, d / "detector_model_config.json")
    return d / "detector.onnx"


def planted_recording(path, plants, seconds: float, sr: int = BAND_SR, seed: int = 0):
    """Quiet coloured noise (``audio.synthetic.background``) with ``(class index, onset s, duration s)`` whistles."""
    from edgeport.audio.io import write_wav
    from edgeport.audio.synthetic import background

    x = 0.01 * background(int(seconds * sr), sr, np.random.default_rng(seed))
    for c, onset, dur in plants:
        t = tone(BAND_CLASSES[c][1], dur, sr, seed=int(onset * 1000))
        i = round(onset * sr)
        x[i : i + t.size] += t
    write_wav(path, x, sr)
    return path

"""KerasRunner: a saved .keras reloads and gives the in-memory model's outputs; unsafe files are refused."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.errors import SourceError
from edgeport.evaluation import evaluate_runner, sigmoid
from edgeport.runtimes import RUNTIMES, open_runner

keras = pytest.importorskip("keras")

from edgeport.runtimes.keras import KerasRunner
from edgeport.sources.base import ModelHandle, TensorSpec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-output model (logits, probabilities) on (8, 6, 1) spectrogram-like input, saved to disk."""
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 6, 1), name="spectrogram")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    h = keras.layers.GlobalAveragePooling2D()(h)
    logits = keras.layers.Dense(3, name="logits")(h)
    probs = keras.layers.Activation("sigmoid", name="probabilities")(logits)
    model = keras.Model(x, [logits, probs])
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return model, path


def _x(n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 8, 6, 1)).astype(np.float32)


def test_reload_matches_in_memory_model(tiny):
    model, path = tiny
    r = open_runner("keras", path)
    assert "keras" in RUNTIMES.names() and isinstance(r, KerasRunner)
    assert [t.name for t in r.inputs] == ["spectrogram"] and r.inputs[0].shape == (None, 8, 6, 1)
    assert r.output_names == ("logits", "probabilities")
    x = _x()
    want = [np.asarray(o) for o in model(x, training=False)]
    got = r.infer({"spectrogram": x})
    np.testing.assert_allclose(got["logits"], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["probabilities"], want[1], rtol=1e-5, atol=1e-6)
    outs, failed = r.run({"spectrogram": x}, batch_size=2)
    assert not failed.any()
    np.testing.assert_allclose(outs["probabilities"], want[1], rtol=1e-5, atol=1e-6)


def test_from_handle_uses_handle_names(tiny):
    model, _ = tiny
    handle = ModelHandle("tiny", "keras", model, inputs=(TensorSpec("input", (None, 8, 6, 1)),),
                         outputs=(TensorSpec("scores", (None, 3)), TensorSpec("probs", (None, 3))))
    r = KerasRunner.from_handle(handle)
    assert [t.name for t in r.inputs] == ["input"] and r.output_names == ("scores", "probs")
    got = r.infer({"input": _x(3)})
    np.testing.assert_allclose(got["probs"], sigmoid(got["scores"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(SourceError, match="missing inputs"):
        r.infer({"spectrogram": _x(3)})


def test_lambda_layer_refused_unless_trusted(tmp_path):
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(2, name="out")(keras.layers.Lambda(lambda t: t * 2.0)(x))
    model = keras.Model(x, y)
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(SourceError, match="--trust-source") as e:
        KerasRunner.open(path)
    assert "\n" not in str(e.value)
    r = KerasRunner.open(path, trust_source=True)
    v = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(r.infer({"x": v})["out"], np.asarray(model(v)), rtol=1e-5, atol=1e-6)


def test_bad_files(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        KerasRunner.open(tmp_path / "nope.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(SourceError, match="bad.keras is not a readable Keras model file"):
        KerasRunner.open(bad)


def test_evaluate_with_keras_runner_logits_or_probabilities(tiny):
    _, path = tiny
    r = KerasRunner.open(path)
    items = [(f"f{i}", np.eye(3)[i % 3], _x(1 + i % 3, seed=i), None) for i in range(6)]
    a = evaluate_runner(r, items, ["a", "b", "c"], output_name="logits", apply_sigmoid=True, progress=False)
    b = evaluate_runner(r, items, ["a", "b", "c"], output_name="probabilities", progress=False)
    np.testing.assert_allclose(a.file_scores, b.file_scores, rtol=1e-5, atol=1e-6)
    assert a.total_chunks == 12 and a.info["output"] == "logits"

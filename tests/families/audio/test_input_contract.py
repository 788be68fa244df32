"""The input contract in the model config (edgeport.families.audio.contract), edgeport's implementation of the
seed system's ``AudioFrontendLayer``, and ``edgeport evaluate`` on a raw-audio (batch, samples) model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.errors import ConfigError

#: the seed system's model config keys, small values
SEED = {"sample_rate": 8000, "num_mels": 16, "spec_width": 16, "fft_length": 128, "chunk_duration": 1,
        "hop_length": 500, "audio_frontend": "hybrid", "mag_scale": "pwl", "embeddings_size": 16, "alpha": 0.25,
        "depth_multiplier": 1, "num_classes": 2, "class_names": ["a", "b"], "frontend_trainable": True}


def _chunk(n: int, seed: int = 0, gain: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000.0
    return (gain * (np.sin(2 * np.pi * 1200 * t) + 0.1 * rng.standard_normal(n))).astype(np.float32)


def test_a_config_without_edgeport_keys_is_the_seed_contract():
    from edgeport.audio.spectrogram import stft_magnitude
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.model_config import AudioModelConfig

    seed = AudioModelConfig.from_dict(SEED)
    assert (seed.input_scaling, seed.pad_bins_in_graph, seed.input_rank) == ("minmax", True, 4)
    assert seed.input_shape == (65, 16, 1)
    own = AudioModelConfig(**{k: v for k, v in SEED.items() if k != "hop_length"})
    assert (own.input_scaling, own.pad_bins_in_graph, own.input_shape) == ("peak", False, (72, 16, 1))
    # written configs carry the contract keys and read back the same
    assert AudioModelConfig.from_dict(seed.to_dict()) == seed and AudioModelConfig.from_dict(own.to_dict()) == own
    x = _chunk(seed.chunk_samples)
    s = stft_magnitude(x, 128, seed.hop_length, 16)
    got = features(x, seed)[..., 0]
    np.testing.assert_allclose(got, (s - s.min()) / (s.max() - s.min() + 1e-10), atol=1e-6)
    assert got.min() == 0.0 and got.max() == pytest.approx(1.0)
    mine = features(x, own)[..., 0]
    np.testing.assert_array_equal(mine[:65], s)  # edgeport: raw magnitude, zero rows up to 72
    assert not mine[65:].any()
    raw = own.replace(audio_frontend="raw", input_rank=2)
    assert raw.input_shape == (8000,) and features(x, raw).shape == (8000,)
    with pytest.raises(ConfigError, match="input_rank 4 does not fit the raw frontend: use 2 or 3"):
        own.replace(audio_frontend="raw", input_rank=4)
    with pytest.raises(ConfigError, match="input scaling"):
        AudioModelConfig.from_dict({**SEED, "input_scaling": "zscore"})


def test_seed_contract_features_are_the_seed_systems_librosa_computation():
    """The seed system's hybrid input: librosa |STFT| (hann, hop len(chunk) // spec_width), first spec_width
    frames, min-max over the chunk."""
    librosa = pytest.importorskip("librosa")
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig.from_dict({**SEED, "spec_width": 24})
    x = _chunk(cfg.chunk_samples, seed=3)
    s = np.abs(librosa.stft(y=x, n_fft=128, hop_length=len(x) // 24, win_length=128, window="hann"))[:, :24]
    np.testing.assert_allclose(features(x, cfg)[..., 0], (s - s.min()) / (s.max() - s.min() + 1e-10), atol=1e-5)


def test_the_artifact_shape_settles_a_seed_config_and_a_real_mismatch_is_named(caplog):
    from edgeport.families.audio.contract import resolve
    from edgeport.families.audio.model_config import AudioModelConfig

    seed = AudioModelConfig.from_dict(SEED)
    assert resolve(seed, (None, 16, 1), what="m", cfg_source="c") == seed.replace(contract_from_artifact=False)
    # an edgeport model (bins padded before it) described by the seed keys only: edgeport's contract
    own = resolve(seed, (72, 16, 1), what="m", cfg_source="c")
    assert (own.input_scaling, own.pad_bins_in_graph) == ("peak", False)
    raw = AudioModelConfig.from_dict({**SEED, "audio_frontend": "raw"})
    assert resolve(raw, (8000,), what="m", cfg_source="c").input_rank == 2
    # explicit contract keys: refused, naming both shapes and what the config would need
    explicit = AudioModelConfig.from_dict({**SEED, "input_scaling": "peak"})
    with pytest.raises(ConfigError) as e:
        resolve(explicit, (65, 16, 1), what="m.tflite", cfg_source="c.json")
    msg = str(e.value)
    assert "(65, 16, 1)" in msg and "(72, 16, 1)" in msg and '"pad_bins_in_graph": true' in msg
    with pytest.raises(ConfigError, match="does not belong to this artifact"):
        resolve(seed, (64, 16, 1), what="m", cfg_source="c")


def test_only_the_peak_contract_normalises_the_file(tmp_path):
    from edgeport.audio.io import write_wav
    from edgeport.families.audio.contract import load_audio
    from edgeport.families.audio.model_config import AudioModelConfig

    x = _chunk(8000, gain=0.2)
    write_wav(tmp_path / "a.wav", x, 8000)
    seed = AudioModelConfig.from_dict(SEED)
    peak = seed.replace(input_scaling="peak")
    assert np.abs(load_audio(tmp_path / "a.wav", peak)).max() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(load_audio(tmp_path / "a.wav", seed), x, atol=1e-3)  # as written


# ------------------------------------------------------------------------------ the seed system's layer


def _seed_math(spec: np.ndarray, layer) -> np.ndarray:
    """The seed layer's hybrid/pwl math in numpy, from the layer's weights: pad bins, mel, ReLU, pwl."""
    w = layer.mel_mixer.get_weights()[0][0, 0]  # (bins padded, mels)
    s = np.concatenate([spec, np.zeros((w.shape[0] - spec.shape[0], spec.shape[1]))])  # (bins, T)
    mel = np.maximum(w.T @ s, 0.0)  # (mels, T)
    y = layer._pwl_k0_dw.get_weights()[0][0, 0, :, 0][:, None] * mel
    for shift, gain in zip(layer._pwl_shift_dws, layer._pwl_k_dws, strict=True):
        ws, b = shift.get_weights()
        y = y + gain.get_weights()[0][0, 0, :, 0][:, None] * np.maximum(ws[0, 0, :, 0][:, None] * mel + b[:, None], 0)
    return y


def test_seed_frontend_layer_computes_the_seed_math_and_loads_in_safe_mode(tmp_path):
    import keras

    from edgeport.families.audio.loading import load_keras_model
    from edgeport.families.audio.seed_layers import AudioFrontendLayer

    inp = keras.Input((65, 16, 1))
    fl = AudioFrontendLayer(mode="hybrid", mel_bins=16, spec_width=16, sample_rate=8000, chunk_duration=1,
                            fft_length=128, mag_scale="pwl")
    out = keras.layers.Dense(2, activation="sigmoid")(keras.layers.Flatten()(fl(inp)))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    for sub in (fl._pwl_k0_dw, *fl._pwl_shift_dws, *fl._pwl_k_dws):  # trained-looking, per-band weights
        sub.set_weights([w + rng.uniform(-0.1, 0.1, w.shape).astype(np.float32) for w in sub.get_weights()])
    x = rng.uniform(0, 1, (3, 65, 16, 1)).astype(np.float32)
    y = np.asarray(fl(x))
    assert y.shape == (3, 16, 16, 1)
    for i in range(3):
        np.testing.assert_allclose(y[i, :, :, 0], _seed_math(x[i, :, :, 0], fl), atol=1e-5)
    # the mel mixer of a fresh layer is the Slaney basis of the seed's settings (150 Hz .. sr/2)
    from edgeport.audio.spectrogram import mel_filterbank

    np.testing.assert_allclose(fl.mel_mixer.get_weights()[0][0, 0, :65], mel_filterbank(8000, 128, 16).T, atol=1e-6)
    # saved as the seed system saves it (registered name without a package), loaded in safe mode
    path = tmp_path / "seed_like.keras"
    model.save(path)
    cfg = json.loads(__import__("zipfile").ZipFile(path).read("config.json"))
    assert [ly["registered_name"] for ly in cfg["config"]["layers"]][1] == "AudioFrontendLayer"
    back = load_keras_model(path, safe_mode=True)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_an_unknown_layer_class_is_still_refused(tmp_path):
    import keras

    from edgeport.errors import SourceError
    from edgeport.families.audio.loading import load_keras_model

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    inp = keras.Input((4,))
    path = tmp_path / "foreign.keras"
    keras.Model(inp, Doubler()(inp)).save(path)
    del keras.saving.get_custom_objects()["elsewhere>Doubler"]
    with pytest.raises(SourceError, match="another tool may hold its own layer classes"):
        load_keras_model(path)


# ------------------------------------------------------------------------------ raw (batch, samples) model


def _raw_onnx(path, samples: int, weights: np.ndarray) -> None:
    """A (batch, samples) -> (batch, classes) logits ONNX model: |x| @ W."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Abs", ["audio"], ["mag"]), helper.make_node("MatMul", ["mag", "W"], ["scores"])],
        "raw", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["N", samples])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", weights.shape[1]])],
        [numpy_helper.from_array(weights.astype(np.float32), "W")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def test_evaluate_takes_a_raw_batch_samples_onnx_with_a_config_that_says_so(tmp_path):
    pytest.importorskip("onnxruntime")
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.evaluation.evaluate import sigmoid
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.families.audio.model_config import AudioModelConfig

    data = tmp_path / "test"
    generate_dataset(data, SyntheticSpec(n_species=2, files_per_class=2, noise_files=1, duration=2.0,
                                         sample_rate=8000), names=["Aa_one", "Bb_two"])
    n = 4000
    w = np.random.default_rng(1).normal(0, 0.05, (n, 2))
    _raw_onnx(tmp_path / "raw.onnx", n, w)
    conf = {"audio_frontend": "raw", "sample_rate": 8000, "chunk_duration": 0.5, "class_names": ["Aa_one", "Bb_two"],
            "input_rank": 2, "input_scaling": "none", "sigmoid_in_graph": False}
    (tmp_path / "raw_model_config.json").write_text(json.dumps(conf))
    res = evaluate_audio_artifact(tmp_path / "raw.onnx", data, n_boot=10, progress=False)
    assert res.info["apply_sigmoid"] is True and "sigmoid_decision" not in res.info
    cfg = AudioModelConfig.from_dict(conf)
    for fid, got in zip(res.file_ids, res.file_scores, strict=True):
        x = model_input_from_audio(data / fid, cfg)
        assert x.shape == (4, n)
        np.testing.assert_allclose(got, sigmoid(np.abs(x) @ w).mean(axis=0), atol=1e-5)
    # the same file with (samples, 1) in the config: refused, naming what the config would need
    (tmp_path / "raw_model_config.json").write_text(json.dumps({**conf, "input_rank": 3}))
    with pytest.raises(ConfigError, match='takes input \\(4000,\\) per chunk .* "input_rank": 2'):
        evaluate_audio_artifact(tmp_path / "raw.onnx", data, n_boot=10, progress=False)


@pytest.mark.slow
def test_evaluate_takes_a_raw_batch_samples_tflite(tmp_path):
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    import keras

    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.families.audio.model_config import AudioModelConfig

    data = tmp_path / "test"
    generate_dataset(data, SyntheticSpec(n_species=2, files_per_class=2, noise_files=1, duration=2.0,
                                         sample_rate=8000), names=["Aa_one", "Bb_two"])
    keras.utils.set_random_seed(0)
    inp = keras.Input((4000,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="sigmoid")(keras.layers.Dense(8, "relu")(inp)))
    (tmp_path / "raw.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    conf = {"audio_frontend": "raw", "sample_rate": 8000, "chunk_duration": 0.5, "class_names": ["Aa_one", "Bb_two"],
            "input_rank": 2, "input_scaling": "peak", "sigmoid_in_graph": True}
    (tmp_path / "raw_model_config.json").write_text(json.dumps(conf))
    res = evaluate_audio_artifact(tmp_path / "raw.tflite", data, n_boot=10, progress=False)
    assert res.info["apply_sigmoid"] is False
    cfg = AudioModelConfig.from_dict(conf)
    for fid, got in zip(res.file_ids, res.file_scores, strict=True):
        want = model.predict(model_input_from_audio(data / fid, cfg), verbose=0).mean(axis=0)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_seed_frontend_layer_raw_mode_is_a_windowed_dft_and_mel():
    """mode raw: frames of samples // spec_width, symmetric Hann, |DFT| (+1e-8 under the root), Slaney mel
    of that frame length, ReLU, no scaling."""
    import librosa

    from edgeport.families.audio.seed_layers import AudioFrontendLayer

    fl = AudioFrontendLayer(mode="raw", mel_bins=16, spec_width=16, sample_rate=8000, chunk_duration=1,
                            mag_scale="none")
    x = np.stack([_chunk(8000, seed=s) for s in (0, 1)])[..., None]
    y = np.asarray(fl(x))[..., 0]  # (2, 16 mels, 16 frames)
    n = 500
    frames = x[:, : n * 16, 0].reshape(2, 16, n) * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1)))
    mag = np.sqrt(np.abs(np.fft.rfft(frames, axis=-1)) ** 2 + 1e-8)  # (2, 16, 251)
    mel = librosa.filters.mel(sr=8000, n_fft=n, n_mels=16, fmin=150.0, fmax=4000.0, htk=False, norm="slaney")
    want = np.maximum(np.einsum("mk,btk->bmt", mel, mag), 0.0)
    np.testing.assert_allclose(y, want, rtol=2e-3, atol=2e-4 * want.max())

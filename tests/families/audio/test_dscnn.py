"""DS-CNN architecture, registries, model config round trip, custom layers in .keras (safe_mode)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

SMALL = {"sample_rate": 16000, "chunk_duration": 0.5, "spec_width": 16, "fft_length": 128, "num_mels": 16, "alpha": 0.25,
             "embeddings_size": 16, "num_classes": 3, "class_names": ("a", "b", "c")}


def test_deprecated_aliases_warn():
    from edgeport.families.audio.model_config import AudioModelConfig

    for old, new in (("precomputed", "librosa"), ("tf", "raw")):
        with pytest.warns(FutureWarning, match=f"'{old}' is deprecated"):
            assert AudioModelConfig(audio_frontend=old).audio_frontend == new


def test_model_config_round_trip(tmp_path):
    from edgeport.families.audio.model_config import (
        AudioModelConfig,
        read_model_config,
        write_model_config,
    )

    cfg = AudioModelConfig(**SMALL, audio_frontend="hybrid", mag_scale="pcen", use_attention_pooling=True)
    write_model_config(cfg, tmp_path / "m_model_config.json")
    d = json.loads((tmp_path / "m_model_config.json").read_text())
    assert d["hop_length"] == 8000 // 16 and d["input_shape"] == [72, 16, 1]
    assert d["layer_names"] == {"normalize": "frontend_normalize", "logits": "logits", "sigmoid": "sigmoid"}
    assert read_model_config(tmp_path / "m_model_config.json") == cfg
    # a seed-system config (its keys only) reads too
    seed_keys = {k: d[k] for k in ("sample_rate", "num_mels", "spec_width", "fft_length", "chunk_duration",
                                   "hop_length", "audio_frontend", "mag_scale", "embeddings_size", "alpha",
                                   "depth_multiplier", "num_classes", "class_names", "frontend_trainable")}
    (tmp_path / "seed.json").write_text(json.dumps(seed_keys))
    assert read_model_config(tmp_path / "seed.json").num_classes == 3


def test_channels_are_multiples_of_8_and_options_change_the_graph():
    import keras

    from edgeport.families.audio.dscnn import build_model, make_divisible
    from edgeport.families.audio.model_config import AudioModelConfig

    assert [make_divisible(v) for v in (4, 12, 33.6, 256 * 0.75)] == [8, 16, 32, 192]
    cfg = AudioModelConfig(**{**SMALL, "alpha": 0.35})
    m = build_model(cfg)
    for layer in m.layers:
        if isinstance(layer, keras.layers.Conv2D) and not layer.name.endswith("se_reduce"):
            assert layer.filters % 8 == 0, layer.name
    names = {la.name for la in m.layers}
    assert "stage1_block1_se_scale" in names and "stage2_block2_add" in names
    plain = {la.name for la in build_model(cfg.replace(use_se=False, use_inverted_residual=False)).layers}
    assert not any("se_" in n or "_add" in n or "expand" in n for n in plain)
    deep = build_model(cfg.replace(depth_multiplier=2))
    assert "stage3_block8_dw" in {la.name for la in deep.layers}
    att = build_model(cfg.replace(use_attention_pooling=True))
    assert type(att.get_layer("embedding_pool")).__name__ == "AttentionPooling"
    assert build_model(cfg.replace(embeddings_size=40)).get_layer("embedding_conv").filters == 40
    assert build_model(cfg.replace(expansion_factor=4)).get_layer("stage2_block2_expand_conv").filters == 4 * make_divisible(64 * 0.35)


def test_unknown_model_and_registry():
    from edgeport.errors import ConfigError
    from edgeport.families.audio.dscnn import MODELS, build_model
    from edgeport.families.audio.model_config import AudioModelConfig

    assert "dscnn" in MODELS
    with pytest.raises(ConfigError, match="Unknown audio model 'resnet'"):
        build_model(AudioModelConfig(**SMALL, model="resnet"))


@pytest.mark.parametrize(("frontend", "mag"), [("hybrid", "pwl"), ("hybrid", "pcen"), ("raw", "db")])
def test_custom_layers_save_and_load_safe_mode(tmp_path, frontend, mag):
    import keras

    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig(**SMALL, audio_frontend=frontend, mag_scale=mag, use_attention_pooling=True)
    m = build_model(cfg)
    # perturb learnable frontend weights so loading must restore them, not re-initialise
    for la in m.layers:
        if la.name.startswith("mag_") and la.weights:
            la.set_weights([w * 1.1 for w in la.get_weights()])
    x = np.random.default_rng(0).random((3, *cfg.input_shape)).astype(np.float32)
    m.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        m2 = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(m(x)), np.asarray(m2(x)))


def test_hybrid_mel_mixer_is_fixed_slaney_and_matches_librosa_frontend():
    """At initialisation the in-graph hybrid frontend equals the offline librosa frontend (pwl)."""
    import keras

    from edgeport.families.audio.contract import features
    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig(**SMALL, audio_frontend="hybrid", mag_scale="pwl")
    m = build_model(cfg)
    assert not m.get_layer("mel_mixer").trainable_weights
    chunk = np.random.default_rng(0).standard_normal(cfg.chunk_samples).astype(np.float32)
    fe = keras.Model(m.inputs, m.get_layer("mag_pwl").output)
    y = np.asarray(fe(features(chunk, cfg)[None]))[0]
    ref = features(chunk, cfg.replace(audio_frontend="librosa"))
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_mixed_precision_keeps_float32_logits():
    import keras

    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.model_config import AudioModelConfig

    prev = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        m = build_model(AudioModelConfig(**SMALL, audio_frontend="librosa"))
    finally:
        keras.config.set_dtype_policy(prev)
    assert m.get_layer("stem_conv").compute_dtype == "float16"
    assert m.get_layer("logits").compute_dtype == "float32" and m.output.dtype == "float32"

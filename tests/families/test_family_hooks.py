"""The family registry is the one place for model knowledge: the audio family's hooks answer what the
exporters and the Keras source ask, and a model of no family gets the exporters' defaults."""

from types import SimpleNamespace

import pytest

from edgeport.errors import SourceError
from edgeport.families import FAMILIES, families_for, family_for_config, family_of
from edgeport.families.audio import graph_rules


def _handle(*layers, family="audio", config=None):
    model = SimpleNamespace(layers=[SimpleNamespace(name=n) for n in layers])
    return SimpleNamespace(model=model, family=family, config=config or {}, keep_float=())


def test_audio_is_a_registered_keras_family():
    audio = FAMILIES.get("audio")
    assert audio.framework == "keras" and families_for("keras") == [audio]
    assert family_of(_handle()) is audio
    assert family_of(_handle(family=None)) is None
    # a torch checkpoint config never picks a Keras family, even with its keys
    assert family_for_config({"audio_frontend": "hybrid", "sample_rate": 22050}) is None
    assert family_for_config({"n_species": 3, "model_scale": 1.0}).name == "geo"


def test_float_layers_per_backend_only_those_the_model_has():
    audio = FAMILIES.get("audio")
    h = _handle("mel_mixer", "frontend_normalize", "stem_conv", "stem_bn", "dense")
    assert audio.float_layers(h, backend="onnx") == ("mel_mixer", "frontend_normalize", "stem_conv", "stem_bn")
    assert audio.float_layers(h, backend="tflite") == ("frontend_normalize",)
    assert audio.float_layers(h, backend="tflite", float_frontend=True) == ("mel_mixer", "frontend_normalize")
    assert audio.float_layers(h, backend="tflite", quantize_normalize=True) == ()
    assert audio.float_layers(h, backend="onnx", override=()) == ()
    assert audio.float_layers(h, backend="onnx", override=("stem_conv", "absent")) == ("stem_conv",)


def test_static_op_types_and_defaults_of_a_family_without_the_hook():
    audio, geo = FAMILIES.get("audio"), FAMILIES.get("geo")
    assert audio.static_op_types(_handle("stem_conv")) == graph_rules.STATIC_OP_TYPES
    assert audio.static_op_types(_handle("dense")) is None  # not a DS-CNN: the exporter's default
    h = _handle("x", family="geo")
    assert geo.float_layers(h, backend="onnx") == () and geo.static_op_types(h) is None
    assert geo.npu_problems(h) == []
    with pytest.raises(SourceError, match="no 'attach_data' hook|takes no data folder"):
        geo.attach_data(h, "folder")
    with pytest.raises(SourceError, match="no 'build' hook"):
        audio.build_from_config()


def test_audio_npu_problems_come_from_its_config():
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig(audio_frontend="raw", sample_rate=48000, chunk_duration=3.0).to_dict()
    problems = FAMILIES.get("audio").npu_problems(_handle(config=cfg))
    assert any("65" in p for p in problems), problems
    assert FAMILIES.get("audio").npu_problems(_handle(config={})) == []

"""Bad input to ``edgeport export X.keras``: one clear line, exit 2, nothing valid-looking left behind."""

from __future__ import annotations

import pytest

from edgeport.cli.main import main

CFG = {"sample_rate": 16000, "chunk_duration": 0.5, "spec_width": 32, "fft_length": 256, "num_mels": 16,
       "alpha": 0.25, "embeddings_size": 16, "num_classes": 3, "class_names": ["a", "b", "c"]}


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained librosa-frontend DS-CNN saved as ``m.keras`` with its ``m_model_config.json``."""
    from edgeport.families.audio import AudioModelConfig, write_model_config
    from edgeport.families.audio.dscnn import build_model

    d = tmp_path_factory.mktemp("untrained")
    cfg = AudioModelConfig(audio_frontend="librosa", **CFG)
    build_model(cfg).save(d / "m.keras")
    write_model_config(cfg, d / "m_model_config.json")
    return d


def _refused(capsys, out, *args):
    code = main(["export", *map(str, args), "--outdir", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("edgeport:") or "error" in ln.lower()]
    assert len(lines) == 1, err
    assert not out.exists() or not any(out.iterdir())
    return lines[0]


def test_model_config_of_another_model(untrained, tmp_path, capsys):
    from edgeport.families.audio import AudioModelConfig, write_model_config

    other = tmp_path / "other_model_config.json"
    write_model_config(AudioModelConfig(audio_frontend="librosa", **{**CFG, "num_mels": 24}), other)
    msg = _refused(capsys, tmp_path / "out", untrained / "m.keras", "--model-config", other, "--quantization", "dynamic")
    assert "does not match the model" in msg and "(24, 32, 1)" in msg and "(16, 32, 1)" in msg
    classes = tmp_path / "classes_model_config.json"
    write_model_config(AudioModelConfig(audio_frontend="librosa", **{**CFG, "num_classes": 5,
                                                                     "class_names": list("abcde")}), classes)
    msg = _refused(capsys, tmp_path / "out", untrained / "m.keras", "--model-config", classes)
    assert "5 classes" in msg and "3 outputs" in msg


def test_calibration_folder_without_audio(untrained, tmp_path, capsys):
    data = tmp_path / "data"
    (data / "robin").mkdir(parents=True)
    (data / "robin" / "notes.txt").write_text("not audio")
    (data / "wren").mkdir()
    (data / "wren" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    msg = _refused(capsys, tmp_path / "out", untrained / "m.keras", "--data-path-train", data)
    assert "no readable audio" in msg and str(data) in msg


def test_full_int8_without_data_suggests_dynamic(untrained, tmp_path, capsys):
    msg = _refused(capsys, tmp_path / "out", untrained / "m.keras")
    assert "--data-path-train" in msg and "--quantization dynamic" in msg


def test_output_path_must_name_the_quantized_artifact(untrained, tmp_path, capsys):
    code = main(["export", str(untrained / "m.keras"), "--output-path", str(tmp_path / "m.tflite")])
    assert code == 2 and "_quantized.tflite" in capsys.readouterr().err


def test_lambda_layer_is_refused_unless_trusted(tmp_path, capsys):
    import keras

    inp = keras.Input((4,), name="x")
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    msg = _refused(capsys, tmp_path / "out", tmp_path / "lam.keras", "--formats", "tflite")
    assert "Lambda" in msg and "--trust-source" in msg

    from edgeport.sources import load_source

    h = load_source(tmp_path / "lam.keras", trust_source=True)  # the user vouches for the file: it loads
    assert h.framework == "keras" and h.family is None and h.input_names == ["x"]


@pytest.mark.parametrize(("argv", "framework", "expected"), [
    ([], "keras", ("tflite_int8_full",)),
    (["--quantization", "dynamic"], "keras", ("tflite_int8",)),
    (["--quantization", "dynamic", "--export-onnx"], "keras", ("tflite_int8", "onnx")),
    (["--formats", "tflite", "tflite_fp16"], "keras", ("tflite", "tflite_fp16")),
    ([], "torch", ("onnx_fp16",)),
])
def test_quantization_picks_the_format_of_a_keras_source(argv, framework, expected):
    import argparse

    from edgeport.cli import export as cli
    from edgeport.export import default_formats

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["m.keras", *argv])
    assert default_formats(framework, formats=args.formats, quantization=args.quantization,
                           export_onnx=args.export_onnx) == expected


@pytest.mark.slow
def test_npu_check_refuses_unaligned_channels_unless_skipped(tmp_path, capsys):
    """A plain Keras model with a 5-channel convolution: the NPU check refuses it and says why;
    --no-npu-check converts and validates it and still records the problem."""
    import json

    import keras
    import numpy as np

    inp = keras.Input((8, 8, 1), name="x")
    y = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="odd")(inp)
    y = keras.layers.GlobalAveragePooling2D()(y)
    out = keras.layers.Dense(3, name="logits")(y)
    keras.Model(inp, keras.layers.Activation("sigmoid", name="sigmoid")(out)).save(tmp_path / "odd.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.random((64, 8, 8, 1), dtype=np.float32))
    np.savez(tmp_path / "ref.npz", x=rng.random((64, 8, 8, 1), dtype=np.float32))
    args = ["export", str(tmp_path / "odd.keras"), "--formats", "tflite_int8_full", "--calibration-inputs",
            str(tmp_path / "cal.npz"), "--reference-inputs", str(tmp_path / "ref.npz")]
    assert main([*args, "--outdir", str(tmp_path / "a")]) == 1
    printed = capsys.readouterr().out
    assert "NPU check" in printed and "(5 channels)" in printed and "--no-npu-check" in printed
    assert not list((tmp_path / "a").glob("*.tflite"))
    main([*args, "--outdir", str(tmp_path / "b"), "--no-npu-check"])
    art = json.loads((tmp_path / "b" / "manifest.json").read_text())["artifacts"][0]
    assert art["status"] in ("passed", "failed"), art["error"]  # converted and validated against Keras
    npu = art["notes"]["npu"]
    assert not npu["checked"] and "(5 channels)" in npu["problems"][0]

"""The Python API driven the way the seed system's code calls its own (seed 003's ``conversion.quantize``):
``representative_data_gen`` -> ``convert_to_tflite``, ``edgeport.export`` on a ``.keras`` with its data
folder, ``edgeport.train`` and ``edgeport.evaluate``; every artifact checked against the Keras model here."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import edgeport

pytestmark = pytest.mark.slow


def _files(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.wav"))


def _seed_cfg(model_path) -> dict:
    """The config dict the seed's code passes: the model's ``X_model_config.json`` as read from disk."""
    return json.loads(model_path.with_name(f"{model_path.stem}_model_config.json").read_text())


def _keras(model_path):
    from edgeport.runtimes import runner_class

    return runner_class("keras").open(model_path)


def test_representative_data_gen_yields_model_inputs_with_the_batch_axis(trained_model, audio_folder):
    from edgeport.families.audio.model_config import AudioModelConfig

    model = trained_model("hybrid")
    cfg = _seed_cfg(model)
    files = _files(audio_folder)
    random.seed(0)
    items = list(edgeport.representative_data_gen(files, cfg, num_samples=12))
    assert 0 < len(items) <= 12
    shape = (1, *AudioModelConfig.from_dict(cfg).input_shape)
    assert shape[1:] == tuple(_keras(model).inputs[0].shape[1:])  # exactly the model's input, batch axis of 1
    for item in items:
        assert isinstance(item, list) and len(item) == 1
        assert item[0].shape == shape and item[0].dtype == np.float32
    # the same rows as edgeport's own centre-chunk rule, file by file
    from edgeport.conversion import centre_input

    random.seed(0)
    drawn = random.sample(files, 12)
    expected = [x for x in (centre_input(f, cfg) for f in drawn) if x is not None]
    assert len(expected) == len(items)
    for got, want in zip(items, expected, strict=True):
        np.testing.assert_array_equal(got[0][0], want)
    # num_samples caps the files drawn
    assert len(list(edgeport.representative_data_gen(files, cfg, num_samples=3))) <= 3


def test_snr_threshold_zero_keeps_the_silent_files(trained_model, tmp_path):
    import soundfile as sf

    from edgeport.errors import DataError

    model = trained_model("hybrid")
    cfg = _seed_cfg(model)
    silent = []
    for i in range(3):
        p = tmp_path / f"silent{i}.wav"
        sf.write(p, np.zeros(cfg["sample_rate"], np.float32), cfg["sample_rate"])
        silent.append(str(p))
    assert list(edgeport.representative_data_gen(silent, cfg)) == []  # below the default 0.01: skipped
    kept = list(edgeport.representative_data_gen(silent, cfg, snr_threshold=0))
    assert len(kept) == 3 and all(not np.any(x[0]) for x in kept)
    with pytest.raises(DataError, match="No audio files"):
        next(edgeport.representative_data_gen([], cfg))


@pytest.mark.parametrize("quantization", ["ptq", "dynamic"])
def test_convert_to_tflite_the_seed_way(quantization, trained_model, audio_folder, tmp_path):
    """``convert_to_tflite(model, lambda: representative_data_gen(...), path)``: bytes written at the path,
    float32 I/O, and the artifact agrees with the Keras model under the format's gate on other inputs."""
    from edgeport.exporters import gate_for
    from edgeport.runtimes import runner_class
    from edgeport.validation import compare

    model_path = trained_model("hybrid")
    cfg = _seed_cfg(model_path)
    keras = _keras(model_path)
    files = _files(audio_folder)
    out = tmp_path / "deploy" / "tiny_quantized.tflite"
    data = edgeport.convert_to_tflite(keras.model, lambda: edgeport.representative_data_gen(files, cfg),
                                      str(out), quantization=quantization)
    assert isinstance(data, bytes) and out.read_bytes() == data
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny_quantized.tflite"]  # nothing else left behind
    litert = runner_class("litert").open(out)
    assert set(litert.io_dtypes()["inputs"].values()) == {"float32"}
    assert set(litert.io_dtypes()["outputs"].values()) == {"float32"}
    # judged here on every chunk of every file (not only the centre chunks it was calibrated on)
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.families.audio.model_config import AudioModelConfig

    mcfg = AudioModelConfig.from_dict(cfg)
    x = np.concatenate([model_input_from_audio(f, mcfg, overlap=0.5) for f in files[::3]])
    assert len(x) > 40
    ref, _ = keras.run({"input": x})
    got, failed = litert.run({"input": x})
    fmt = "tflite_int8_full" if quantization == "ptq" else "tflite_int8"
    cmp = compare(ref, got, gate_for(fmt), failed=failed)
    assert cmp.passed, cmp.failures


def test_convert_to_tflite_raises_when_the_gate_is_missed(trained_model, audio_folder, tmp_path):
    from edgeport.errors import ConfigError, ValidationError

    model_path = trained_model("hybrid")
    cfg = _seed_cfg(model_path)
    out = tmp_path / "m.tflite"
    out.write_bytes(b"an earlier artifact")
    files = _files(audio_folder)[:20]
    with pytest.raises(ValidationError, match="max_abs_diff"):
        edgeport.convert_to_tflite(_keras(model_path).model, lambda: edgeport.representative_data_gen(files, cfg),
                                   out, gates={"max_abs_diff": 1e-12})  # below INT8 rounding
    assert not out.exists()  # nothing under the final name (the earlier one is gone: it is not this model's)
    assert (tmp_path / "m.failed.tflite").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.failed.tflite"]
    with pytest.raises(ConfigError, match="Invalid quantization"):
        edgeport.convert_to_tflite(_keras(model_path).model, None, out, quantization="int4")


def test_export_api_on_a_keras_audio_model_matches_the_cli(trained_model, audio_folder, tmp_path, capsys):
    """``edgeport.export(X.keras, data_path=...)`` = ``edgeport export X.keras --data-path-train ...``."""
    from edgeport.cli.main import main

    model = trained_model("hybrid")
    api = edgeport.export(model, data_path=audio_folder, outdir=tmp_path / "api", snr_threshold=0.01)
    assert [a.format for a in api.artifacts] == ["tflite_int8_full"] and api.passed
    assert main(["export", str(model), "--data-path-train", str(audio_folder), "--outdir", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    m_api, m_cli = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("api", "cli"))
    assert m_api["calibration"]["sha256"] == m_cli["calibration"]["sha256"]  # the same representative dataset
    assert (tmp_path / "api" / "tiny_quantized.tflite").read_bytes() == (tmp_path / "cli" / "tiny_quantized.tflite").read_bytes()
    dyn = edgeport.export(model, quantization="dynamic", export_onnx=True, data_path=audio_folder,
                          outdir=tmp_path / "dyn", validate_samples=40)
    assert [a.format for a in dyn.artifacts] == ["tflite_int8", "onnx"] and dyn.passed
    assert dyn.reference_summary["rows"] == 40


def test_train_and_evaluate_the_seed_way(audio_folder, trained_model, tmp_path):
    """``edgeport.train(...)`` then ``edgeport.evaluate(...)``: the calls under ``edgeport train`` / ``evaluate``."""
    from edgeport.cli.main import main
    from edgeport.errors import ConfigError
    from tests.conversion.conftest import MODEL

    res = edgeport.train(str(audio_folder), str(tmp_path / "m" / "seed.keras"), audio_frontend="hybrid",
                         mag_scale="pwl", epochs=2, **{**MODEL, "val_split": 0.2})
    assert res.model_path.is_file() and res.config_path.is_file() and res.epochs_run == 2
    assert 0.0 <= res.val_roc_auc <= 1.0
    assert _seed_cfg(res.model_path)["audio_frontend"] == "hybrid"
    with pytest.raises(ConfigError, match="edgeport.train"):
        edgeport.train(str(audio_folder), str(tmp_path / "x.keras"), no_such_option=1)

    model = trained_model("hybrid")
    ev = edgeport.evaluate(model, audio_folder, outdir=tmp_path / "ev", plots=False)
    assert (tmp_path / "ev" / "evaluation.json").is_file()
    assert main(["evaluate", str(model), "--data-path-test", str(audio_folder), "--outdir", str(tmp_path / "cli"),
                 "--no-plots", "--no-progress"]) == 0
    cli = json.loads((tmp_path / "cli" / "evaluation.json").read_text())
    assert ev.metrics["roc_auc_macro"] == pytest.approx(cli["summary"]["roc_auc_macro"], abs=1e-12)
    assert 0.5 < ev.metrics["roc_auc_macro"] <= 1.0

"""``edgeport export X.keras``: TFLite formats of trained DS-CNNs for every frontend, checked against Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.cli.main import main

pytestmark = pytest.mark.slow


def _export(capsys, *args):
    code = main(["export", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _artifact(outdir, fmt):
    m = json.loads((outdir / "manifest.json").read_text())
    return m, next(a for a in m["artifacts"] if a["format"] == fmt)


def _check_against_keras(model_path, tflite_path, golden_path, *, min_cosine, min_centred, min_top1):
    """Re-run Keras and LiteRT on the golden inputs here, independently of the pipeline's comparator."""
    from edgeport.export import load_golden
    from edgeport.runtimes import runner_class
    from edgeport.validation.metrics import output_metrics

    g = load_golden(golden_path)
    x = g["inputs"]["input"]
    keras_out = runner_class("keras").open(model_path).run({"input": x})[0]["sigmoid"]
    litert = runner_class("litert").open(tflite_path)
    assert litert.io_dtypes() == {"inputs": {"input": "float32"}, "outputs": {"sigmoid": "float32"}}
    got, failed = litert.run({"input": x})
    assert not failed.any(), f"{int(failed.sum())} rows failed to run"
    np.testing.assert_allclose(g["reference"]["sigmoid"], keras_out, atol=1e-5)
    if g["artifact"]["sigmoid"] is None:  # within the gate's tolerance of the source: not stored twice
        assert np.abs(got["sigmoid"] - keras_out).max() <= g["tolerance"]["sigmoid"] + 1e-5
    else:
        np.testing.assert_allclose(g["artifact"]["sigmoid"], got["sigmoid"], atol=1e-6)
    m = output_metrics(keras_out, got["sigmoid"])
    assert m.cosine_mean >= min_cosine and m.centred_pearson >= min_centred and m.top1_agreement >= min_top1, m
    return m, x


@pytest.mark.parametrize("frontend", ["hybrid", "librosa", "raw", "mfcc", "log_mel"])
def test_full_int8_for_every_frontend(frontend, trained_model, audio_folder, tmp_path, capsys):
    model = trained_model(frontend)
    out = tmp_path / "out"
    code, printed = _export(capsys, "--checkpoint-path", model, "--data-path-train", audio_folder, "--outdir", out)
    m, art = _artifact(out, "tflite_int8_full")
    assert code == 0, printed
    assert art["status"] == "passed" and art["file"] == "tiny_quantized.tflite"
    assert (out / "tiny_quantized_validation_data.npz").is_file()
    assert [a["format"] for a in m["artifacts"]] == ["tflite_int8_full"]  # --quantization ptq is the default
    _, x = _check_against_keras(model, out / "tiny_quantized.tflite", out / "tiny_quantized_validation_data.npz",
                                      min_cosine=0.95, min_centred=0.9, min_top1=0.9)
    # the hard cases lead the held-out set: digital silence, then a real chunk at -60 dB and -80 dB
    from edgeport.families.audio import AudioModelConfig
    from edgeport.families.audio.contract import features

    cfg = AudioModelConfig.from_dict(m["source"]["model_config"])
    np.testing.assert_array_equal(x[0], features(np.zeros(cfg.chunk_samples, np.float32), cfg))
    assert m["calibration"]["hard_cases"][0] == "silence" and len(m["calibration"]["hard_cases"]) == 3
    cal = m["calibration"]
    # 70 files, fewer than --num-samples: two rows a file (the centre chunk, the most energetic other one)
    assert cal["rows"] == 140 and sum(cal["class_histogram"].values()) == 140 and len(cal["sha256"]) == 64
    assert cal["files_used"] == 70 and cal["rows_per_file"] == 3
    assert set(cal["class_histogram"]) == {"noise", "sp00_upsweep", "sp01_downsweep", "sp02_trill"}
    cpu = art["notes"]["npu"]["cpu_ops"]
    assert cpu[-1].startswith("LOGISTIC"), cpu  # the output sigmoid runs in float (SPEC §3)
    if frontend == "hybrid":  # the per-sample normalisation divides: it runs in float (with what feeds it)
        assert any(op.startswith("DIV:") and "frontend_normalize" in op for op in cpu)
    else:
        assert len(cpu) == 1


def test_float_frontend_lists_the_frontend_as_cpu_work(trained_model, audio_folder, tmp_path, capsys):
    model = trained_model("hybrid")
    path = tmp_path / "npu" / "bird_quantized.tflite"
    code, printed = _export(capsys, model, "--data-path-train", audio_folder, "--float-frontend",
                            "--output-path", path, "--report-json", tmp_path / "report.json")
    assert code == 0, printed
    assert path.is_file() and (path.parent / "bird_quantized_validation_data.npz").is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    art = report["artifacts"][0]
    assert report["all_passed"] and art["validation"]["passed"]
    cpu = art["notes"]["npu"]["cpu_ops"]
    assert any("mel_mixer" in op for op in cpu) and any("mag_pwl" in op for op in cpu)
    _check_against_keras(model, path, path.parent / "bird_quantized_validation_data.npz",
                         min_cosine=0.95, min_centred=0.9, min_top1=0.9)


def test_cosine_below_min_cosine_sim_fails_and_keeps_the_artifact_marked(trained_model, audio_folder, tmp_path,
                                                                           capsys):
    """One export, two formats: dynamic INT8 passes its gate; full INT8 misses --min-cosine-sim 0.99999."""
    model = trained_model("hybrid")
    out = tmp_path / "out"
    code, printed = _export(capsys, model, "--data-path-train", audio_folder, "--outdir", out,
                            "--formats", "tflite_int8", "tflite_int8_full", "--min-cosine-sim", "0.99999")
    assert code == 1, printed
    assert "cosine_mean" in printed and "0.99999" in printed
    assert (out / "tiny_quantized.failed.tflite").is_file() and (out / "tiny_quantized.failed_validation_data.npz").is_file()
    assert not (out / "tiny_quantized.tflite").exists() and not (out / "tiny_quantized_validation_data.npz").exists()
    _, art = _artifact(out, "tflite_int8_full")
    assert art["status"] == "failed" and art["validation"]["gate"]["min_cosine"] == 0.99999
    assert 0.95 <= art["validation"]["outputs"]["sigmoid"]["cosine_mean"] < 0.99999
    _, dyn = _artifact(out, "tflite_int8")
    assert dyn["status"] == "passed" and dyn["validation"]["gate"]["min_cosine"] == 0.99  # other gates untouched
    _check_against_keras(model, out / "tiny_int8.tflite", out / "tiny_int8_validation_data.npz",
                         min_cosine=0.99, min_centred=0.9, min_top1=0.98)


def test_every_audio_tflite_artifact_resizes_to_batch_7(trained_model, audio_folder, tmp_path, capsys):
    """The DS-CNN's four TFLite artifacts: judged by the pipeline at batch 1 and 7 through resize_tensor_input,
    and here again: batch-7 rows equal batch-1 rows and pass the gate against the Keras outputs."""
    from edgeport.export import load_golden
    from edgeport.exporters import gate_for
    from edgeport.validation import compare
    from tests._support.resize import resized_rows

    out = tmp_path / "out"
    formats = ("tflite", "tflite_fp16", "tflite_int8", "tflite_int8_full")
    code, printed = _export(capsys, trained_model("hybrid"), "--data-path-train", audio_folder, "--outdir", out,
                            "--formats", *formats)
    assert code == 0, printed
    m = json.loads((out / "manifest.json").read_text())
    assert [a["format"] for a in m["artifacts"]] == list(formats)
    for art in m["artifacts"]:
        assert art["batch"].startswith("dynamic") and set(art["notes"]["resize_check"]) == {"1", "7"}
        assert all(c["passed"] for c in art["notes"]["resize_check"].values()), art["notes"]["resize_check"]
        golden = load_golden(out / art["golden_vectors"])
        at7 = resized_rows(out / art["file"], golden["inputs"], art["format"])
        cmp = compare(golden["reference"], at7, gate_for(art["format"]))
        assert cmp.passed, (art["format"], cmp.failures)

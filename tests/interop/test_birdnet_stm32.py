"""The audio seed system's own published checkpoint (birdnet-stm32, MIT licence) through edgeport unchanged:
``edgeport evaluate`` on its INT8 ``.tflite`` with its config, its ``.keras`` loaded in safe mode, and
``edgeport export`` of it to full INT8, compared with the Keras model and with the shipped ``.tflite`` on the
same seed-contract spectrograms of synthetic calls."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.cli.main import main
from tests._support.shared import shared_dir
from tests.interop.conftest import FILES_PER_CLASS, N_SPECIES, NOISE_FILES, STEM

pytestmark = [pytest.mark.interop]

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

#: the shipped model's 3 s chunks in the synthetic folder's 4 s files: 2 chunks a file (the last one padded)
N_FILES = N_SPECIES * FILES_PER_CLASS + NOISE_FILES
#: calibration rows and validation chunks of the test export (kept small: the test's cost is the conversion)
CALIBRATION, VALIDATION = 28, 32


def _run(runner, x: np.ndarray) -> np.ndarray:
    outs, failed = runner.run({runner.inputs[0].name: x}, 1)
    assert not failed.any()
    return next(iter(outs.values()))


@pytest.fixture(scope="module")
def keras_scores(stm32_files, stm32_inputs):
    from edgeport.runtimes.keras import KerasRunner

    runner = KerasRunner.open(stm32_files["keras"])  # safe mode
    return _run(runner, stm32_inputs)


@pytest.fixture(scope="module")
def shipped_scores(stm32_files, stm32_inputs):
    from edgeport.runtimes import open_runner

    return _run(open_runner("litert", stm32_files["tflite"]), stm32_inputs)


def test_shipped_tflite_evaluates_with_its_config(stm32_files, stm32_cfg, stm32_data, tmp_path):
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.runtimes import open_runner

    out = tmp_path / "eval"
    rc = main(["evaluate", str(stm32_files["tflite"]), "--model-config", str(stm32_files["config"]),
               "--data-path-test", str(stm32_data), "--outdir", str(out), "--no-progress", "--no-plots",
               "--n-boot", "20"])
    assert rc == 0
    res = json.loads((out / "evaluation.json").read_text())
    assert res["files"]["evaluated"] == N_FILES and res["chunks"] == {"total": 2 * N_FILES, "failed": 0}
    assert res["info"]["apply_sigmoid"] is False  # sigmoid in the graph: scores in [0, 1]
    # the file scores are the shipped model's mean over the file's seed-contract chunks
    runner = open_runner("litert", stm32_files["tflite"])
    rows = {r.split(",")[0]: r for r in (out / "evaluation_files.csv").read_text().splitlines()[1:]}
    fid = min(rows)
    x = model_input_from_audio(stm32_data / fid, stm32_cfg)
    assert x.shape == (2, 257, 256, 1) and x.min() == 0.0 and x.max() == pytest.approx(1.0)
    header = (out / "evaluation_files.csv").read_text().splitlines()[0].split(",")
    first = header.index(stm32_cfg.class_names[0])
    got = np.array([float(v) for v in rows[fid].split(",")[first: first + 100]])
    np.testing.assert_allclose(got, _run(runner, x).mean(axis=0), atol=1e-5)


def test_shipped_keras_loads_in_safe_mode_and_its_frontend_is_the_shipped_tflites(stm32_files, stm32_inputs,
                                                                                  keras_scores, shipped_scores):
    """edgeport's AudioFrontendLayer on the saved weights gives the shipped INT8 .tflite's frontend output (its
    int8 tensor, dequantized) within 3 quantization steps; the scores agree as INT8 and float do."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from edgeport.families.audio.loading import load_keras_model
    from edgeport.families.audio.seed_layers import AudioFrontendLayer
    from edgeport.validation.metrics import output_metrics

    model = load_keras_model(stm32_files["keras"], safe_mode=True)
    layer = model.get_layer("audio_frontend")
    assert isinstance(layer, AudioFrontendLayer) and layer.mode == "hybrid" and layer.mag_scale == "pwl"
    frontend = keras.Model(model.inputs[0], layer.output)
    interp = Interpreter(str(stm32_files["tflite"]), experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    t = next(d for d in interp.get_tensor_details() if d["name"].endswith("audio_frontend_1/strided_slice_3"))
    scale, zero = t["quantization"]
    for x in stm32_inputs[:4]:
        interp.set_tensor(interp.get_input_details()[0]["index"], x[None])
        interp.invoke()
        shipped = (interp.get_tensor(t["index"]).astype(np.float32) - zero) * scale
        ours = np.asarray(frontend(x[None]))
        assert ours.shape == shipped.shape == (1, 64, 256, 1)
        assert np.abs(ours - shipped).max() <= 3 * scale
        assert output_metrics(ours.reshape(1, -1), shipped.reshape(1, -1)).cosine_mean > 0.995
    m = output_metrics(keras_scores, shipped_scores)
    assert m.top1_agreement >= 0.9 and m.centred_pearson >= 0.95, m


#: the calibration folder of benchmarks/interop_stm32.py (seed 0): 8 species x 16 files + 16 noise files, 4 s
CAL_SPECIES, CAL_FILES, CAL_NOISE = 8, 16, 16


@pytest.fixture(scope="module")
def edgeport_int8(stm32_files, tmp_path_factory):
    """``edgeport export`` of the shipped .keras to tflite_int8_full (its defaults), calibrated on the synthetic
    folder the benchmark's figures use (docs/seed-models.md)."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    labels = stm32_files["labels"].read_text().splitlines()
    with shared_dir(tmp_path_factory, "stm32_int8") as (d, built):
        out = d / "exports"
        if not built:
            data = d / "calibration"
            generate_dataset(data, SyntheticSpec(n_species=CAL_SPECIES, files_per_class=CAL_FILES,
                                                 noise_files=CAL_NOISE, duration=4.0, sample_rate=22050),
                             seed=0, names=labels[:CAL_SPECIES])
            rc = main(["export", str(stm32_files["keras"]), "--data-path-train", str(data), "--formats",
                       "tflite_int8_full", "--outdir", str(out), "--validate-samples", str(VALIDATION)])
            assert rc == 0
    return out


@pytest.mark.slow
def test_edgeport_full_int8_of_the_shipped_keras(edgeport_int8, stm32_inputs, keras_scores, shipped_scores):
    from edgeport.runtimes import open_runner
    from edgeport.validation.metrics import output_metrics

    manifest = json.loads((edgeport_int8 / "manifest.json").read_text())
    assert manifest["all_passed"] and manifest["calibration"]["rows"] > 0
    # the seed frontend layer stays float: the [0, 1] input reaches the mel mixer unrounded
    notes = manifest["artifacts"][0]["notes"]
    assert notes["float_layers"] == ["audio_frontend"] and notes["int8_route"] == "converter"
    assert any(op.startswith("CONV_2D:") and "audio_frontend" in op for op in notes["npu"]["cpu_ops"])
    # calibration diagnostics: size, classes, skipped share, rows per file, value range and content hash
    cal = manifest["calibration"]
    # 144 files < --num-samples 1024: up to 3 rows a file, but a 4 s file has two 3 s chunks and keeps one
    n_files = CAL_SPECIES * CAL_FILES + CAL_NOISE
    assert sum(cal["class_histogram"].values()) == cal["rows"] == cal["files_used"] == n_files
    assert cal["rows_per_file"] == 3 and cal["skipped_near_silent_share"] == 0.0
    assert cal["range"]["linear_spectrogram_input"] == pytest.approx([0.0, 1.0]) and len(cal["sha256"]) == 64
    runner = open_runner("litert", edgeport_int8 / f"{STEM}_quantized.tflite")
    assert runner.io_dtypes()["inputs"] == {"linear_spectrogram_input": "float32"}
    ours = _run(runner, stm32_inputs)
    vs_keras = output_metrics(keras_scores, ours)
    vs_shipped = output_metrics(shipped_scores, ours)
    assert vs_keras.top1_agreement >= 0.9 and vs_keras.centred_pearson >= 0.95, vs_keras
    assert vs_shipped.top1_agreement >= 0.9 and vs_shipped.centred_pearson >= 0.95, vs_shipped


def test_predict_on_the_shipped_tflite_feeds_the_seed_contract(stm32_files, stm32_cfg, stm32_data):
    """``edgeport predict`` on the shipped .tflite with its config: the seed contract's inputs (min-max per chunk,
    257 bins), every chunk's top score the model's own on ``model_input_from_audio``, and no sigmoid applied on
    top of the graph's (the config's ``sigmoid_in_graph``)."""
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.prediction.audio import AudioPredictor
    from edgeport.runtimes import open_runner

    fid = min(stm32_data.rglob("*.wav"))
    p = AudioPredictor(stm32_files["tflite"], fid, model_config=stm32_files["config"], min_conf=0.0, top_k=1)
    (res,) = list(p.run())
    assert p.info["apply_sigmoid"] is False
    want = _run(open_runner("litert", stm32_files["tflite"]), model_input_from_audio(fid, stm32_cfg))
    assert res.chunks == len(want) == 2
    got = sorted((d.start_s, d.confidence) for d in res.detections)
    np.testing.assert_allclose([c for _, c in got], want.max(axis=1), atol=1e-4)


@pytest.fixture(scope="module")
def stm32_handle(stm32_files, stm32_data):
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data

    handle = load_source(stm32_files["keras"])
    attach_audio_data(handle, stm32_data, num_samples=CALIBRATION, validate_samples=VALIDATION, progress=False)
    return handle


@pytest.mark.slow
def test_ai_edge_quantizer_route_on_the_shipped_keras(stm32_handle, stm32_inputs, keras_scores, tmp_path,
                                                      monkeypatch):
    """The ai-edge-quantizer route: a pwl branch of the frontend is zero over the calibration set; the quantizer's
    own 1e-9 range floor gave its INT8 ADD a scale LiteRT aborts the process on. With the constant ranges
    widened it converts and runs; without, the one-line refusal names the op instead of aborting."""
    from edgeport.errors import ConversionError
    from edgeport.exporters import tflite_common as T
    from edgeport.exporters import tflite_keras as KT
    from edgeport.exporters.base import ExportOptions
    from edgeport.runtimes import open_runner
    from edgeport.validation.metrics import output_metrics

    float_data = KT.convert_float(stm32_handle)
    opts = ExportOptions(calibration_samples=CALIBRATION)
    notes: dict = {}
    data = T.quantize_full_int8(float_data, stm32_handle, opts, keep_regexes=[], notes=notes)
    assert notes["constant_ranges_widened"] > 0
    path = tmp_path / "aeq.tflite"
    path.write_bytes(data)
    m = output_metrics(keras_scores, _run(open_runner("litert", path), stm32_inputs))
    assert m.top1_agreement >= 0.8 and m.centred_pearson >= 0.9, m
    monkeypatch.setattr(T, "widen_constant_ranges", lambda calib: 0)
    with pytest.raises(ConversionError, match=r"^INT8 ADD '.*audio_frontend.*' got output scale .* LiteRT cannot "
                                              r"run it .*--int8-route converter$"):
        T.quantize_full_int8(float_data, stm32_handle, opts, keep_regexes=[], notes={})

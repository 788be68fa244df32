"""``edgeport evaluate`` end to end: the session's tiny trained DS-CNN as .keras, as an FP32 .tflite with a
fixed batch and as an FP32 .onnx that ends in logits, on a held-out synthetic test folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeport.cli.main import main
from edgeport.errors import SourceError
from tests._support.shared import shared_dir
from tests.training.conftest import tiny_data, tiny_run  # noqa: F401 - the session's model, built once under a lock

pytestmark = [pytest.mark.slow, pytest.mark.integration]

tf = pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("onnxruntime")

#: test folder: 3 species x 6 files + 6 noise files of 2 s; the model's chunks are 0.5 s -> 4 chunks a file
N_FILES, CHUNKS_PER_FILE, FIXED_BATCH = 24, 4, 4


@pytest.fixture(scope="module")
def test_folder(tmp_path_factory):
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    root = tmp_path_factory.mktemp("eval_test_folder")
    generate_dataset(root, SyntheticSpec(n_species=3, files_per_class=6, noise_files=6, duration=2.0,
                                         sample_rate=16000, difficulty=0.0, snr_db=(5.0, 20.0)), seed=33)
    return root


@pytest.fixture(scope="module")
def artifacts(tiny_run, tmp_path_factory):  # noqa: F811
    """The trained .keras (with its config beside it), a TFLite FP32 with a fixed batch of 4 and an ONNX FP32
    of the logits (no sigmoid layer), each in its own folder with the seed system's config keys only. Built
    once per test run (shared by the xdist workers under a lock)."""
    from edgeport.families.audio.model_config import read_model_config

    cfg = read_model_config(tiny_run.config_path)
    with shared_dir(tmp_path_factory, "eval_cli_artifacts") as (d, built):
        tfl = d / "tfl" / "tiny_quantized.tflite"  # the seed's TFLite name: config inferred as tiny_model_config.json
        onnx = d / "onnx" / "tiny.onnx"
        if not built:
            _convert(tiny_run.model_path, cfg, tfl, onnx)
    return {"keras": tiny_run.model_path, "tflite": tfl, "onnx": onnx, "cfg": cfg}


def _convert(model_path: Path, cfg, tfl: Path, onnx: Path) -> None:
    import keras
    import tf2onnx

    from edgeport.families.audio.loading import load_trained_model

    model, _ = load_trained_model(model_path)
    seed_keys = ("sample_rate", "num_mels", "spec_width", "fft_length", "chunk_duration", "hop_length",
                 "audio_frontend", "mag_scale", "embeddings_size", "alpha", "depth_multiplier", "num_classes",
                 "class_names", "frontend_trainable")
    seed_cfg = {k: v for k, v in cfg.to_dict().items() if k in seed_keys}
    assert len(seed_cfg) == len(seed_keys)

    fixed_in = keras.Input(batch_shape=(FIXED_BATCH, *cfg.input_shape))
    fixed = keras.Model(fixed_in, model(fixed_in))
    tfl.parent.mkdir(exist_ok=True)
    tfl.write_bytes(tf.lite.TFLiteConverter.from_keras_model(fixed).convert())
    (tfl.parent / "tiny_model_config.json").write_text(json.dumps(seed_cfg))

    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    onnx.parent.mkdir(exist_ok=True)
    spec = (tf.TensorSpec((None, *cfg.input_shape), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(logits, input_signature=spec, opset=17, output_path=str(onnx))
    (onnx.parent / "tiny_model_config.json").write_text(json.dumps(seed_cfg))


def _evaluate(artifact, folder, outdir, *extra) -> dict:
    rc = main(["evaluate", str(artifact), "--data-path-test", str(folder), "--outdir", str(outdir), "--no-progress",
               *map(str, extra)])
    assert rc == 0
    return json.loads((Path(outdir) / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def runs(artifacts, test_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_runs")
    return {k: (_evaluate(artifacts[k], test_folder, out / k), out / k) for k in ("keras", "tflite", "onnx")}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _file_scores(outdir: Path, class_names) -> dict[str, np.ndarray]:
    return {r["file"]: np.array([float(r[c]) for c in class_names]) for r in _read_csv(outdir / "evaluation_files.csv")}


def test_three_formats_agree(runs, artifacts):
    names = list(artifacts["cfg"].class_names)
    ref, ref_dir = runs["keras"]
    assert ref["files"]["evaluated"] == N_FILES and ref["chunks"] == {"total": N_FILES * CHUNKS_PER_FILE, "failed": 0}
    assert ref["info"]["runtime"] == "keras" and ref["info"]["apply_sigmoid"] is False
    ref_scores = _file_scores(ref_dir, names)
    for kind in ("tflite", "onnx"):
        got, got_dir = runs[kind]
        assert got["chunks"] == ref["chunks"]
        for k, v in ref["summary"].items():
            assert got["summary"][k] == pytest.approx(v, abs=1e-6), (kind, k)
        scores = _file_scores(got_dir, names)
        assert scores.keys() == ref_scores.keys()
        assert max(np.abs(scores[f] - ref_scores[f]).max() for f in scores) < 1e-5
    # the ONNX artifact ends in logits: the sigmoid was applied because of its output name
    assert runs["onnx"][0]["info"]["apply_sigmoid"] is True
    assert "logits" in runs["onnx"][0]["info"]["sigmoid_decision"]
    assert runs["tflite"][0]["info"]["model_config"].endswith("tfl/tiny_model_config.json")


def test_scores_follow_the_training_input_path(runs, artifacts, test_folder):
    """File scores = mean over every 0.5 s chunk of the Keras model's probabilities on training's model input."""
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.families.audio.loading import load_trained_model

    model, _ = load_trained_model(artifacts["keras"])
    names = list(artifacts["cfg"].class_names)
    scores = _file_scores(runs["keras"][1], names)
    for fid in sorted(scores)[::5]:
        x = model_input_from_audio(test_folder / fid, artifacts["cfg"], overlap=0.0)
        assert x.shape[0] == CHUNKS_PER_FILE
        want = np.asarray(model.predict_on_batch(x)).mean(axis=0)
        np.testing.assert_allclose(scores[fid], want, atol=1e-5)


def test_outputs_hold_the_figures(runs, artifacts):
    from sklearn.metrics import average_precision_score, roc_auc_score

    names = list(artifacts["cfg"].class_names)
    rep, d = runs["tflite"]
    rows = _read_csv(d / "evaluation_files.csv")
    y = np.array([[float(c in r["labels"].split(";")) for c in names] for r in rows])
    s = np.array([[float(r[c]) for c in names] for r in rows])
    assert y.sum() == 18 and (y.sum(axis=1) == 0).sum() == 6  # 3 x 6 species files, 6 noise files (all-zero)
    m = rep["metrics"]
    assert m["roc_auc_macro"] == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-9)
    assert m["cmap"] == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-9)
    assert 0.0 <= m["f1_micro"] <= 1.0 and m["det"]["eer"] is not None
    # chunk CSV: 4 rows per file whose mean is the file's pooled (avg) score, start times 0, 0.5, 1, 1.5 s
    chunks = _read_csv(d / "evaluation_chunks.csv")
    assert len(chunks) == N_FILES * CHUNKS_PER_FILE
    first = [r for r in chunks if r["file"] == rows[0]["file"]]
    assert [float(r["start_s"]) for r in first] == [0.0, 0.5, 1.0, 1.5]
    np.testing.assert_allclose(np.mean([[float(r[c]) for c in names] for r in first], axis=0), s[0], atol=1e-5)
    page = (d / "evaluation.html").read_text()
    assert f"{m['cmap']:.4f}" in page and f"{m['roc_auc_macro']:.4f}" in page
    assert page.count("data:image/png;base64,") == 2 and "http" not in page.split("<body>")[1]
    for png in ("evaluation_confusion.png", "evaluation_det.png"):
        assert (d / png).read_bytes()[:4] == b"\x89PNG"


def test_fixed_batch_tflite_runs_in_fixed_size_chunks(runs, artifacts, test_folder):
    """Forced to its traced batch of 4 (no resize), the TFLite model gives the same file scores."""
    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.runtimes.litert import LiteRTRunner

    runner = LiteRTRunner.open(artifacts["tflite"], probe_resize=False)
    assert runner.fixed_batch == FIXED_BATCH
    res = evaluate_audio_artifact(artifacts["tflite"], test_folder, runner=runner, batch_size=10, progress=False)
    assert res.info["fixed_batch"] == FIXED_BATCH and res.failed_chunks == 0
    ref = _file_scores(runs["tflite"][1], res.class_names)
    np.testing.assert_allclose(np.stack([ref[f] for f in res.file_ids]), res.file_scores, atol=1e-6)


def test_species_report_latency_pooling_and_overlap(artifacts, test_folder, tmp_path):
    onnx = artifacts["onnx"]
    avg = _evaluate(onnx, test_folder, tmp_path / "avg", "--species-report", "--n-boot", 200, "--benchmark-latency",
                    "--report-json", tmp_path / "copy.json")
    assert json.loads((tmp_path / "copy.json").read_text()) == avg
    for r in avg["metrics"]["per_class"]:
        assert r["ap_ci_low"] <= r["ap"] <= r["ap_ci_high"] and r["ap_ci_low"] < r["ap_ci_high"]
        assert 0 < r["ap_boot_valid"] <= 200
    assert "AP 95% CI" in (tmp_path / "avg" / "evaluation.html").read_text()
    lat = avg["latency"]["per_chunk_ms"]
    assert lat["batch_1"]["p50_ms"] > 0 and lat["batched"]["p50_ms"] > 0
    assert avg["latency"]["batched_rows"] == 64

    names = avg["class_names"]
    s = {p: _file_scores(tmp_path / p, names) for p in ("avg",)}
    for p in ("max", "lme"):
        rep = _evaluate(onnx, test_folder, tmp_path / p, "--pooling", p)
        assert rep["pooling"]["method"] == p
        s[p] = _file_scores(tmp_path / p, names)
        assert any(rep["summary"][k] != avg["summary"][k] for k in avg["summary"]), p
    a, mx, lme = (np.stack([s[p][f] for f in sorted(s["avg"])]) for p in ("avg", "max", "lme"))
    assert np.all(mx >= a - 1e-9) and (mx - a).max() > 0.05
    assert np.all((lme >= a - 1e-9) & (lme <= mx + 1e-9)) and np.abs(lme - a).max() > 1e-3

    ov = _evaluate(onnx, test_folder, tmp_path / "ov", "--overlap", 0.25)
    assert ov["chunks"]["total"] == N_FILES * 7  # starts 0, 0.25, ..., 1.5 s
    assert ov["info"]["overlap_s"] == 0.25


def test_model_config_found_from_the_artifact_name(tmp_path, artifacts, caplog):
    from edgeport.families.audio.model_config import (
        find_model_config,
        write_model_config,
    )

    cfg = artifacts["cfg"]
    write_model_config(cfg, tmp_path / "m_model_config.json")
    for name in ("m.keras", "m.onnx", "m_quantized.tflite", "m_fp16.onnx", "m_int8.tflite", "m_int8_static.onnx",
                 "m_quantized.failed.tflite", "m_qat.keras", "m_qat_quantized.tflite"):
        (tmp_path / name).write_bytes(b"")
        got, where = find_model_config(tmp_path / name)
        assert got == cfg and where == str(tmp_path / "m_model_config.json"), name
    # an export folder: the manifest's source
    exp = tmp_path / "exports"
    exp.mkdir()
    (exp / "other_quantized.tflite").write_bytes(b"")
    (exp / "manifest.json").write_text(json.dumps({"source": {"path": str(tmp_path / "m.keras")}}))
    assert find_model_config(exp / "other_quantized.tflite")[0] == cfg
    (exp / "manifest.json").write_text(json.dumps({"source": {"path": None, "model_config": cfg.to_dict()}}))
    assert find_model_config(exp / "other_quantized.tflite") == (cfg, f"{exp / 'manifest.json'} (source.model_config)")
    # a seed-system config whose hop_length is not edgeport's: read, with a warning
    seed = {**cfg.to_dict(), "hop_length": cfg.hop_length + 1}
    (tmp_path / "seed_model_config.json").write_text(json.dumps(seed))
    with caplog.at_level("WARNING"):
        assert find_model_config(tmp_path / "x.tflite", tmp_path / "seed_model_config.json")[0] == cfg
    assert f"hop_length {cfg.hop_length + 1}" in caplog.text
    (exp / "manifest.json").write_text(json.dumps({"source": {"path": None}}))
    with pytest.raises(SourceError, match="pass --model-config"):
        find_model_config(exp / "other_quantized.tflite")


def _bad(capsys, *argv) -> str:
    """Exit 2 and one error line (no traceback); returns that line."""
    assert main(["evaluate", *map(str, argv), "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("edgeport evaluate: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, artifacts, test_folder):
    onnx = artifacts["onnx"]
    assert "Test folder not found" in _bad(capsys, onnx, "--data-path-test", tmp_path / "nope")
    (tmp_path / "empty" / "sp00_upsweep").mkdir(parents=True)
    assert "no audio files" in _bad(capsys, onnx, "--data-path-test", tmp_path / "empty")
    line = _bad(capsys, onnx, "--data-path-test", test_folder, "--pooling", "mean")
    assert "mean" in line and "lme" in line
    assert "Artifact not found" in _bad(capsys, tmp_path / "x.onnx", "--data-path-test", test_folder)
    assert "No model config found" in _bad(capsys, shutil.copy(onnx, tmp_path / "lone.onnx"), "--data-path-test",
                                           test_folder)
    assert "overlap" in _bad(capsys, onnx, "--data-path-test", test_folder, "--overlap", 0.5)
    # a config that does not describe this artifact (another spectrogram width)
    wrong = tmp_path / "wrong_model_config.json"
    wrong.write_text(json.dumps({**artifacts["cfg"].to_dict(), "spec_width": 64}))
    line = _bad(capsys, onnx, "--data-path-test", test_folder, "--model-config", wrong)
    assert "does not belong to this artifact" in line and "(136, 32, 1)" in line and "(136, 64, 1)" in line
    # a config with more classes than the artifact's output
    names = list(artifacts["cfg"].class_names)
    more = tmp_path / "more_model_config.json"
    more.write_text(json.dumps({**artifacts["cfg"].to_dict(), "class_names": [*names, "sp03_whistle"], "num_classes": 4}))
    line = _bad(capsys, onnx, "--data-path-test", test_folder, "--model-config", more)
    assert "3 scores per chunk but 4 class names" in line
    # a test folder with a species the model does not know
    fewer = tmp_path / "fewer_model_config.json"
    fewer.write_text(json.dumps({**artifacts["cfg"].to_dict(), "class_names": names[:2], "num_classes": 2}))
    line = _bad(capsys, onnx, "--data-path-test", test_folder, "--model-config", fewer)
    assert f"Test folders ['{names[2]}']" in line and "not classes of the model" in line


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("EDGEPORT_REQUIRE_CHROMIUM"),
                    reason="chromium is not installed (apt-get install chromium; make test installs it)")
def test_html_report_renders_in_chromium(runs, tmp_path):
    assert shutil.which("chromium"), "make test needs chromium: tools/ensure-chromium.sh installs it"
    rep, d = runs["onnx"]
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*cmd, "--dump-dom", (d / "evaluation.html").as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "<h1>edgeport evaluation: tiny.onnx</h1>" in dom
    assert f"{rep['metrics']['cmap']:.4f}" in dom and dom.count('src="data:image/png;base64,') == 2
    shot = tmp_path / "page.png"
    subprocess.run([*cmd, f"--screenshot={shot}", "--window-size=1200,2400", (d / "evaluation.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000


def test_unreadable_files_are_skipped_and_listed(artifacts, test_folder, tmp_path, capsys):
    folder = shutil.copytree(test_folder, tmp_path / "test")
    (folder / "sp00_upsweep" / "broken.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    rep = _evaluate(artifacts["onnx"], folder, tmp_path / "out")
    assert rep["files"]["evaluated"] == N_FILES
    assert len(rep["info"]["skipped_files"]) == 1 and rep["info"]["skipped_files"][0].startswith("broken.wav: ")
    assert "skipped 1 unreadable file(s), e.g. broken.wav" in capsys.readouterr().out

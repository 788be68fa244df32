"""``edgeport bench``: figures checked against the files, the runners and the comparator run independently."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgeport.cli.main import main
from edgeport.export import load_golden
from edgeport.runtimes import open_runner
from edgeport.validation import Gate, compare
from tests._support.strict_json import strict_load

pytestmark = pytest.mark.slow

BATCH = 8


@pytest.fixture(scope="module")
def benched(bench_export, tmp_path_factory):
    """``edgeport bench`` of the export folder, written to a separate --outdir; (exit code, bench.json, stdout)."""
    out = tmp_path_factory.mktemp("bench_out")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["bench", str(bench_export), "--outdir", str(out), "--batch", str(BATCH), "--repeats", "5",
                     "--warmup", "2"])
    return code, strict_load(out / "bench.json"), buf.getvalue(), out


def test_bench_covers_every_artifact_with_sane_figures(bench_export, benched):
    code, data, printed, out = benched
    assert code == 0, printed
    manifest = json.loads((bench_export / "manifest.json").read_text())
    rows = {a["name"]: a for a in data["artifacts"]}
    assert set(rows) == {a["format"] for a in manifest["artifacts"]}
    assert data["settings"]["threads"] == 1 and data["settings"]["batch"] == BATCH
    assert data["settings"]["repeats"] == 5 and data["settings"]["warmup"] == 2
    for art in manifest["artifacts"]:
        row = rows[art["format"]]
        assert row["file"] == art["file"]
        assert row["size_bytes"] == (bench_export / art["file"]).stat().st_size
        for key, rows_per_call in (("batch_1", 1), ("batched", BATCH)):
            lat = row["latency"][key]
            assert lat["batch"] == rows_per_call
            assert 0 < lat["p50_ms"] <= lat["p90_ms"], lat
            assert lat["per_row_ms"] == pytest.approx(lat["p50_ms"] / rows_per_call)
        assert row["agreement"]["passed"] and row["task"] is None
        assert row["name"] in printed and "n/a" in printed
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "report.html").is_file()


def test_agreement_equals_the_comparator_on_the_same_inputs(bench_export, benched):
    _, data, _, _ = benched
    manifest = json.loads((bench_export / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        golden = load_golden(bench_export / art["golden_vectors"])
        runner = open_runner({"onnx": "onnxruntime", "tflite": "litert"}[art["file"].rsplit(".", 1)[1]],
                             bench_export / art["file"])
        got, failed = runner.run(golden["inputs"])
        gate = Gate(**art["validation"]["gate"])
        expected = json.loads(json.dumps(compare(golden["reference"], got, gate, failed=failed).to_dict()))
        row = next(a for a in data["artifacts"] if a["name"] == art["format"])
        assert row["agreement"] == expected
        assert row["agreement"]["rows"] == data["inputs"]["rows"] == manifest["reference_inputs"]["golden_rows"]


def test_artifact_folder_with_reference_and_labels(bench_export, tmp_path, capsys):
    """A folder of loose files benched against the FP32 ONNX: the reference row, the task metric (top-1 accuracy
    on given labels) of each artifact beside the reference's, and the drop."""
    folder = tmp_path / "loose"
    folder.mkdir()
    for name in ("geolike_int8.onnx", "geolike.tflite"):
        shutil.copy(bench_export / name, folder / name)
    from tests._support.torch_models import geo_inputs

    feeds = geo_inputs(64, seed=5)
    ref_runner = open_runner("onnxruntime", bench_export / "geolike.onnx")
    ref, _ = ref_runner.run(feeds)
    rng = np.random.default_rng(0)
    labels = np.argmax(ref["probabilities"], axis=1)
    labels = np.where(rng.random(64) < 0.25, (labels + 1) % 24, labels)  # a quarter wrong on purpose
    np.savez(tmp_path / "inputs.npz", input=feeds["input"], labels=labels)

    code = main(["bench", str(folder), "--reference", str(bench_export / "geolike.onnx"), "--reference-inputs",
                 str(tmp_path / "inputs.npz"), "--repeats", "3", "--batch", "16"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    data = strict_load(folder / "bench.json")
    assert data["kind"] == "artifact folder" and data["inputs"]["rows"] == 64 and data["inputs"]["labels"] == [64]
    rows = {a["name"]: a for a in data["artifacts"]}
    assert set(rows) == {"reference", "geolike_int8.onnx", "geolike.tflite"}
    ref_acc = float(np.mean(np.argmax(ref["probabilities"], axis=1) == labels))
    assert rows["reference"]["role"] == "reference" and rows["reference"]["task"]["value"] == pytest.approx(ref_acc)
    assert 0.5 < ref_acc < 1.0
    for name, runtime in (("geolike_int8.onnx", "onnxruntime"), ("geolike.tflite", "litert")):
        got, _ = open_runner(runtime, folder / name).run(feeds)
        acc = float(np.mean(np.argmax(got["probabilities"], axis=1) == labels))
        task = rows[name]["task"]
        assert task["metric"] == "top1_accuracy" and task["value"] == pytest.approx(acc)
        assert task["drop_points"] == pytest.approx(100 * (ref_acc - acc))
        expected = compare(ref, got, Gate()).headline()
        assert rows[name]["headline"]["max_abs_diff"] == pytest.approx(expected["max_abs_diff"], rel=1e-12)
        assert rows[name]["latency"]["batched"]["batch"] == 16
    assert "top1_accuracy" in printed and "reference" in printed


def test_bad_input_is_one_line_and_exit_2(bench_export, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["bench", str(tmp_path / "missing")], "no such folder"),
        (["bench", str(empty)], "has no manifest.json: pass --reference MODEL"),
        (["bench", str(bench_export), "--reference-inputs", str(tmp_path / "x.npz")], "needs --reference MODEL"),
        (["bench", str(bench_export), "--batch", "0"], "--batch must be >= 1"),
        (["bench", str(bench_export), "--repeats", "1"], "--repeats must be >= 2"),
        (["bench", str(empty), "--reference", str(bench_export / "geolike.onnx")], "holds no artifact to bench"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)
    assert not list(empty.iterdir())


def test_an_earlier_bench_needs_force_and_is_left_as_it_was(bench_export, benched, capsys):
    _, _, _, out = benched
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["bench", str(bench_export), "--outdir", str(out), "--repeats", "2"]) == 2
    assert "holds an earlier bench" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_artifact_that_cannot_run_is_reported_and_the_others_are_benched(bench_export, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(bench_export / "geolike_int8.onnx", folder / "good.onnx")
    (folder / "broken.tflite").write_bytes(b"not a flatbuffer")
    code = main(["bench", str(folder), "--reference", str(bench_export / "geolike.onnx"), "--repeats", "2",
                 "--no-plots"])
    printed = capsys.readouterr().out
    assert code == 1
    rows = {a["name"]: a for a in strict_load(folder / "bench.json")["artifacts"]}
    assert "cannot load broken.tflite" in rows["broken.tflite"]["error"]
    assert rows["broken.tflite"]["latency"] == {} and "broken.tflite: ai-edge-litert cannot load" in printed
    assert rows["good.onnx"]["error"] is None and rows["good.onnx"]["latency"]["batch_1"]["p50_ms"] > 0
    assert not (folder / "bench.png").exists()
    assert "seeded N(0,1) inputs" in strict_load(folder / "bench.json")["inputs"]["source"]

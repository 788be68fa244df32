"""Per-layer error reports (validation/per_layer.py) on tiny models with one layer hostile to INT8: the report
ranks that layer worst, and its figures match a numpy computation made without the report's code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.errors import SourceError
from edgeport.exporters import FORMATS, ExportOptions, get_exporter
from edgeport.validation.metrics import sqnr_db
from edgeport.validation.per_layer import INT8_SQNR_DB, per_layer, tflite_per_layer
from tests._support import hostile

OPTIONS = ExportOptions(calibration_samples=128)


def _export(handle, fmt_name, path):
    fmt = FORMATS.get(fmt_name)
    get_exporter(fmt)(handle, fmt=fmt, path=path, options=OPTIONS)
    return path


@pytest.fixture(scope="module")
def keras_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("per_layer_keras")
    handle = hostile.keras_hostile_handle()
    return handle, _export(handle, "tflite_int8_full", d / "q.tflite"), _export(handle, "tflite", d / "f.tflite")


@pytest.fixture(scope="module")
def torch_pair(tmp_path_factory):
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("per_layer_torch")
    handle = hostile.torch_hostile_handle()
    return handle, _export(handle, "onnx_int8_static", d / "q.onnx"), _export(handle, "onnx", d / "f.onnx")


def test_tflite_report_ranks_the_hostile_layer_worst(keras_pair):
    handle, q, f = keras_pair
    rep = per_layer(q, f, hostile.feeds(64, 7), layers=[layer.name for layer in handle.model.layers])
    assert rep.backend == "tflite" and rep.input_rows == 64 and not rep.unmatched
    assert rep.layers()[0] == "hostile", rep.table()
    worst = rep.rows[0]
    assert worst.layer == "hostile" and worst.quantized and worst.sqnr_db < 10 and worst.loss_db > 20
    # the ops in front of it lose little, and every quantized op has a scale
    d1 = next(r for r in rep.rows if r.layer == "d1")
    assert d1.sqnr_db > 30 and d1.loss_db < 5
    assert all(r.scale and r.rmse_over_scale is not None for r in rep.rows if r.quantized)
    text = rep.table()
    assert "hostile" in text.splitlines()[3] and "SQNR dB" in text
    data = json.loads(rep.to_json())
    assert data["layers_worst_first"][0] == "hostile" and len(data["rows"]) == len(rep.rows)


def test_tflite_figures_match_numpy(keras_pair):
    """The hostile layer's TANH output: float from the Keras weights in numpy, quantized read from a plain
    interpreter run and dequantized by hand; SQNR, RMSE and RMSE/scale recomputed here."""
    from ai_edge_litert.interpreter import Interpreter

    handle, q, f = keras_pair
    x = hostile.feeds(40, 3)["x"]
    (w1, b1), (w2, b2) = (handle.model.get_layer(n).get_weights() for n in ("d1", "hostile"))
    ref = np.tanh(np.maximum(x.astype(np.float64) @ w1 + b1, 0) @ w2 + b2)

    it = Interpreter(model_path=str(q), experimental_preserve_all_tensors=True)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(inp["index"], x)
    it.invoke()
    det = next(d for d in it.get_tensor_details() if d["name"].endswith("hostile_1/Tanh"))
    scale, zero = det["quantization"]
    got = (it.get_tensor(det["index"]).astype(np.float64) - zero) * scale

    noise = np.sum((ref - got) ** 2)
    want_sqnr = 10 * np.log10(np.sum(ref**2) / noise)
    want_rmse = np.sqrt(np.mean((ref - got) ** 2))
    rep = tflite_per_layer(q, f, {"x": x}, layers=["d1", "hostile", "d3", "logits"])
    row = next(r for r in rep.rows if r.tensor == det["name"])
    assert row.op == "TANH"
    assert row.sqnr_db == pytest.approx(want_sqnr, abs=1e-3)  # the float .tflite agrees with numpy to ~1e-6
    assert row.rmse == pytest.approx(want_rmse, rel=1e-3)
    assert row.scale == pytest.approx(scale) and row.rmse_over_scale == pytest.approx(want_rmse / scale, rel=1e-3)
    assert row.loss_db == pytest.approx(min(row.input_sqnr_db, INT8_SQNR_DB) - row.sqnr_db)


def test_onnx_report_ranks_the_hostile_linear_worst(torch_pair):
    _, q, f = torch_pair
    rep = per_layer(q, f, hostile.feeds(64, 7))
    assert rep.backend == "onnx" and "qdq_loss_debug" in rep.tool
    assert rep.layers()[0] == "hostile.fc_out", rep.table()
    worst = rep.rows[0]
    assert worst.op == "Gemm" and worst.sqnr_db < 10 and worst.loss_db > 15
    assert worst.weight_sqnr_db is not None and worst.weight_sqnr_db > 20  # its weights quantize well
    stem = next(r for r in rep.rows if r.layer == "stem")
    assert stem.sqnr_db > 30
    assert json.loads(rep.to_json())["rows"][0]["layer"] == "hostile.fc_out"


def test_onnx_figures_match_numpy(torch_pair):
    """``hostile.fc_out``'s output: float from the torch weights in numpy, quantized from ONNX Runtime on the
    QDQ model with that tensor made a graph output (no qdq_loss_debug)."""
    import onnx
    import onnxruntime as ort
    import torch

    handle, q, f = torch_pair
    x = hostile.feeds(50, 4)["x"]
    rep = per_layer(q, f, {"x": x})
    row = rep.rows[0]
    m = handle.model
    with torch.no_grad():
        h = torch.relu(m.stem(torch.from_numpy(x)))
        ref = m.hostile(h).double().numpy()
    model = onnx.load_model(str(q))
    post = f"{row.tensor}_DequantizeLinear_Output"  # what the next node reads: the tensor after its QDQ pair
    assert any(post in n.output for n in model.graph.node)
    for t in (row.tensor, post):
        model.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()  # the QDQ graph as written (qdq_loss_debug's setting)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    pre, got = (a.astype(np.float64) for a in sess.run([row.tensor, post], {"x": x}))
    assert got.shape == ref.shape
    want = 10 * np.log10(np.sum(ref**2) / np.sum((ref - got) ** 2))
    assert row.sqnr_db == pytest.approx(want, abs=1e-3)
    assert row.rmse == pytest.approx(np.sqrt(np.mean((ref - got) ** 2)), rel=1e-3)
    assert row.local_sqnr_db == pytest.approx(10 * np.log10(np.sum(pre**2) / np.sum((pre - got) ** 2)), abs=1e-3)
    assert sqnr_db(ref, ref) == 300.0  # identical arrays give the cap, never infinity


def test_mismatched_files_are_refused(keras_pair, tmp_path):
    _, q, _ = keras_pair
    other = tmp_path / "f.onnx"
    other.write_bytes(b"x")
    with pytest.raises(SourceError, match="compares a quantized .tflite with a float .tflite"):
        per_layer(q, other, hostile.feeds(4))


def test_missing_input_is_refused(keras_pair):
    _, q, f = keras_pair
    with pytest.raises(SourceError, match=r"lack \['x'\]"):
        per_layer(q, f, {"y": np.zeros((2, 16), np.float32)})


def test_quantization_debugger_route_on_keras(keras_pair):
    """TF's QuantizationDebugger (Keras route: it needs the converter) judges each op against the float op fed
    the same dequantized inputs. Its tensors are the interpreter report's; it reads the hostile layer's TANH
    as a clean op (its input was already rounded), where the accumulated figure shows the damage: why the
    fallback ranks with the interpreter report (docs/per-layer.md)."""
    from edgeport.validation.per_layer import tflite_debugger_report

    handle, q, f = keras_pair
    feeds = hostile.feeds(32, 7)
    dbg = tflite_debugger_report(handle, hostile.feeds(128, 0)["x"], feeds)
    assert "QuantizationDebugger" in dbg.tool and dbg.input_rows == 32
    assert all(r.scale and r.scale > 0 and r.op in ("FULLY_CONNECTED", "TANH") for r in dbg.rows)
    acc = per_layer(q, f, feeds, layers=["d1", "hostile", "d3", "logits"])
    names = {r.tensor for r in acc.rows}
    assert {r.tensor for r in dbg.rows if r.tensor.startswith("functional")} <= names
    own = next(r for r in dbg.rows if r.op == "TANH")
    accumulated = next(r for r in acc.rows if r.tensor == own.tensor)
    assert own.layer == accumulated.layer == "hostile"
    assert own.sqnr_db > 30 and accumulated.sqnr_db < 10


@pytest.mark.parametrize("fmt_name, float_name, make", [
    ("tflite_int8", "tflite", "keras_hostile_handle"),
    ("onnx_int8", "onnx", "torch_hostile_handle"),
])
def test_dynamic_range_artifacts_are_reported(tmp_path, fmt_name, float_name, make):
    """INT8 weights, float activations: every op is matched by name, weight-bearing ops count as quantized."""
    if make.startswith("torch"):
        pytest.importorskip("torch")
    handle = getattr(hostile, make)()
    ext = FORMATS.get(fmt_name).extension
    q, f = _export(handle, fmt_name, tmp_path / f"q{ext}"), _export(handle, float_name, tmp_path / f"f{ext}")
    rep = per_layer(q, f, hostile.feeds(32, 1), layers=[layer.name for layer in getattr(handle.model, "layers", [])])
    assert not rep.unmatched and rep.rows
    quantized = [r for r in rep.rows if r.quantized]
    assert quantized and all(r.op in ("FULLY_CONNECTED", "Gemm", "MatMul") for r in quantized)
    assert all(r.scale is None and r.sqnr_db < 300 for r in quantized)  # float activations: no INT8 scale
    assert rep.layers() == list(dict.fromkeys(r.layer for r in quantized))


def test_validate_cli_per_layer_names_the_hostile_linear(torch_pair, tmp_path, capsys):
    """``edgeport validate --per-layer``: the table printed and the report in validation.json (strict JSON)."""
    from edgeport.cli.main import main
    from tests._support.strict_json import strict_load

    _, q, f = torch_pair
    np.savez(tmp_path / "ref.npz", **hostile.feeds(64, 7))
    code = main(["validate", str(q), "--reference", str(f), "--reference-inputs", str(tmp_path / "ref.npz"),
                 "--per-layer", "--outdir", str(tmp_path / "v")])
    out = capsys.readouterr().out
    assert code == 1  # the hostile model misses the INT8 gate; the report says where
    assert "hostile.fc_out" in out.split("reference inputs:", 1)[1]
    data = strict_load(tmp_path / "v" / "validation.json")
    (entry,) = data["artifacts"].values()
    rows = entry["per_layer"]["rows"]
    assert rows[0]["layer"] == "hostile.fc_out" and rows[0]["sqnr_db"] < 10


def test_validate_per_layer_refuses_a_reference_of_another_kind(torch_pair, capsys):
    from edgeport.cli.main import main

    _, q, _ = torch_pair
    assert main(["validate", str(q), "--reference", str(q.with_suffix(".tflite")), "--per-layer"]) == 2
    assert "--per-layer compares" in capsys.readouterr().err

"""An ONNX file written by another tool as the source of ``edgeport export``: every format that applies, each
judged against the source file run in ONNX Runtime; FP16 sources, symbolic batch and opsets, colliding names,
bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.cli.main import main
from edgeport.exporters import FORMATS, gate_for
from edgeport.runtimes import open_runner
from edgeport.validation import compare
from tests._support import onnx_models


@pytest.fixture(scope="module")
def third_party_export(tmp_path_factory):
    return onnx_models.export_all(tmp_path_factory)


def _artifacts(outdir):
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {a["format"]: a for a in manifest["artifacts"]}, manifest


@pytest.mark.slow
def test_third_party_onnx_exports_to_every_format_and_each_passes(third_party_export):
    src, outdir, code = third_party_export
    arts, manifest = _artifacts(outdir)
    expected = {name for name, spec in FORMATS.items() if "onnx" in spec.frameworks}
    assert set(arts) == expected  # calibration data given: the static INT8 formats apply too
    failures = {k: a["error"] or a["validation"]["failures"] for k, a in arts.items() if a["status"] != "passed"}
    assert not failures
    assert code == 0
    assert manifest["source"]["framework"] == "onnx"
    assert [t["name"] for t in manifest["inputs"]] == ["a", "b"]
    assert [t["name"] for t in manifest["outputs"]] == ["logits", "probs"]
    assert manifest["calibration"]["rows"] == 128
    # independently of the pipeline: each artifact on fresh inputs against the source FILE in ONNX Runtime
    inputs = onnx_models.feeds(60, seed=123)
    reference = onnx_models.ort_outputs(src, inputs)
    for fmt_name, art in arts.items():
        fmt = FORMATS.get(fmt_name)
        got, failed = open_runner(fmt.runtime, outdir / art["file"]).run(inputs)
        assert set(got) == {"logits", "probs"}
        cmp = compare(reference, got, gate_for(fmt_name), failed=failed)
        assert cmp.passed, (fmt_name, cmp.failures)
    # the source's fixed batch is kept and said, not hidden
    assert arts["onnx"]["notes"]["fixed_batch"] == 1 and arts["onnx"]["notes"]["dynamic_batch"] is False
    # the quantized ONNX artifacts really are quantized
    import onnx

    ops = {n.op_type for n in onnx.load(str(outdir / arts["onnx_int8"]["file"])).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    ops = {n.op_type for n in onnx.load(str(outdir / arts["onnx_int8_static"]["file"])).graph.node}
    assert "QuantizeLinear" in ops


def test_fp16_onnx_source_is_brought_back_to_fp32(tmp_path):
    from edgeport.sources import load_source

    src = onnx_models.third_party_model(tmp_path / "half.onnx", fp16=True, external=False, batch=None)
    handle = load_source(src)
    assert [t.dtype for t in (*handle.inputs, *handle.outputs)] == ["float32"] * 4
    assert handle.notes["fp16_source"]["tensors"] >= 5
    gap = handle.notes["fp16_source"]["max_abs_diff_fp16_vs_fp32"]
    assert gap is not None and 0 < gap < 0.06  # the FP16 file's own compute vs its FP32 graph
    out = tmp_path / "out"
    code = main(["export", str(src), "--formats", "onnx", "onnx_fp16", "onnx_int8", "--outdir", str(out)])
    arts, _ = _artifacts(out)
    assert code == 0 and all(a["status"] == "passed" for a in arts.values())
    assert arts["onnx"]["io_dtypes"]["inputs"] == {"a": "float32", "b": "float32"}
    # the FP32 artifact against the FP16 file as given: within what FP16 compute costs
    inputs = onnx_models.feeds(40, seed=9)
    given = onnx_models.ort_outputs(src, {k: v.astype(np.float16) for k, v in inputs.items()})
    got, _ = open_runner("onnxruntime", out / arts["onnx"]["file"]).run(inputs)
    assert compare(given, got, gate_for("onnx_fp16")).passed


@pytest.mark.parametrize("opset", [13, 21])
def test_symbolic_batch_and_opsets(tmp_path, opset):
    src = onnx_models.third_party_model(tmp_path / f"m{opset}.onnx", opset=opset, batch=None)
    out = tmp_path / "out"
    assert main(["export", str(src), "--formats", "onnx", "onnx_fp16", "onnx_int8", "--outdir", str(out)]) == 0
    arts, manifest = _artifacts(out)
    assert manifest["inputs"][0]["shape"] == [None, 8]
    assert arts["onnx"]["notes"]["dynamic_batch"] is True and arts["onnx"]["notes"]["opset"] == opset
    inputs = onnx_models.feeds(33, seed=4)
    reference = onnx_models.ort_outputs(src, inputs)
    for name, art in arts.items():
        got, failed = open_runner("onnxruntime", out / art["file"]).run(inputs, batch_size=33)  # one batch of 33
        assert compare(reference, got, gate_for(name), failed=failed).passed, name


def test_colliding_tensor_names_are_renamed_before_quantization(tmp_path):
    import onnxruntime as ort
    from onnxruntime import quantization as q

    src = onnx_models.third_party_model(tmp_path / "clash.onnx", batch=None, external=False, collide=True)
    # the collision is real: ONNX Runtime's dynamic quantizer writes a file that does not load
    raw = tmp_path / "raw_int8.onnx"
    q.quantize_dynamic(str(src), str(raw), weight_type=q.QuantType.QInt8)
    with pytest.raises(Exception, match="Duplicate definition of name"):
        ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"])

    from edgeport.sources import load_source

    handle = load_source(src)
    assert "h" + onnx_models.COLLIDING_SUFFIX in handle.notes["renamed_tensors"]
    np.savez(tmp_path / "cal.npz", **onnx_models.feeds(64, 3))
    out = tmp_path / "out"
    code = main(["export", str(src), "--formats", "onnx", "onnx_int8", "onnx_int8_static", "--calibration-inputs",
                 str(tmp_path / "cal.npz"), "--outdir", str(out)])
    arts, _ = _artifacts(out)
    assert code == 0, {k: a["error"] or a["validation"]["failures"] for k, a in arts.items()}
    inputs = onnx_models.feeds(50, seed=11)
    reference = onnx_models.ort_outputs(src, inputs)
    for name, art in arts.items():
        got, failed = open_runner("onnxruntime", out / art["file"]).run(inputs)
        assert compare(reference, got, gate_for(name), failed=failed).passed, name


def test_static_int8_calibrates_on_reference_inputs_and_refuses_without_data(tmp_path, capsys):
    src = onnx_models.third_party_model(tmp_path / "m.onnx", batch=None)
    out = tmp_path / "none"
    assert main(["export", str(src), "--formats", "onnx_int8_static", "--outdir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs calibration data" in err[0] and "--calibration-inputs" in err[0]
    assert not out.exists()
    np.savez(tmp_path / "ref.npz", **onnx_models.feeds(100, 8))
    out = tmp_path / "out"
    assert main(["export", str(src), "--formats", "onnx_int8_static", "--reference-inputs", str(tmp_path / "ref.npz"),
                 "--outdir", str(out)]) == 0
    _, manifest = _artifacts(out)
    assert "--reference-inputs" in manifest["calibration"]["source"]
    assert manifest["reference_inputs"]["rows"] == 100


def test_input_range_shapes_the_random_reference_inputs(tmp_path, capsys):
    from edgeport.sources import load_source
    from edgeport.sources.inputs import parse_input_ranges

    src = onnx_models.third_party_model(tmp_path / "m.onnx", batch=None, external=False)
    handle = load_source(src, input_ranges=parse_input_ranges(["a=2,3"]))
    feeds = handle.reference_inputs(50, 0)
    assert feeds["a"].shape == (50, 8) and feeds["a"].min() >= 2 and feeds["a"].max() <= 3
    assert feeds["b"].min() < 0  # N(0, 1) where no range is given
    assert np.array_equal(handle.reference_inputs(50, 0)["a"], feeds["a"])  # seeded
    out = tmp_path / "o"
    assert main(["export", str(src), "--formats", "onnx", "--input-range", "zz=0,1", "--outdir", str(out)]) == 2
    assert "zz" in capsys.readouterr().err and not out.exists()


def test_not_an_onnx_file_and_missing_external_data_give_one_line_and_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \xff\xfe" * 10)
    src = onnx_models.third_party_model(tmp_path / "ext" / "m.onnx")
    (tmp_path / "ext" / "m.onnx.data").unlink()
    for path, words in ((junk, "not a"), (src, "m.onnx.data")):
        out = tmp_path / f"out_{path.stem}"
        assert main(["export", str(path), "--formats", "onnx", "--outdir", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
        assert not out.exists()


def test_tflite_is_refused_with_the_reason_when_names_cannot_be_tf_names(tmp_path, capsys):
    import onnx

    src = onnx_models.third_party_model(tmp_path / "m.onnx", batch=None, external=False)
    model = onnx.load(str(src))
    tf_style = {"a": "serving_default_a:0", "logits": "StatefulPartitionedCall:0"}  # as TF -> ONNX converters name
    for v in (*model.graph.input, *model.graph.output):
        v.name = tf_style.get(v.name, v.name)
    for n in model.graph.node:
        n.input[:] = [tf_style.get(x, x) for x in n.input]
        n.output[:] = [tf_style.get(x, x) for x in n.output]
    onnx.save(model, str(tmp_path / "tf_names.onnx"))
    out = tmp_path / "out"
    assert main(["export", str(tmp_path / "tf_names.onnx"), "--formats", "onnx", "tflite", "--outdir", str(out)]) == 1
    arts, _ = _artifacts(out)
    assert arts["onnx"]["status"] == "passed"  # the ONNX formats keep the names as they are
    assert arts["tflite"]["status"] == "error" and "cannot be TF signature names" in arts["tflite"]["error"]
    assert "serving_default_a:0" in arts["tflite"]["error"] and not (out / "tf_names.tflite").exists()

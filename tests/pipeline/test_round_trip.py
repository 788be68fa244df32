"""Every registered format, exported from a real source and compared number by number with it.

``ROUND_TRIP_CASES`` names, for each format, the session export that covers it; the meta-test fails when
a registered format has none.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.exporters import FORMATS, gate_for
from edgeport.runtimes import open_runner, runner_class
from edgeport.validation import compare

pytestmark = pytest.mark.slow

#: format -> (fixture giving an export folder that includes it, fixture giving the source it was made from)
ROUND_TRIP_CASES = {
    "onnx": ("geo_export_all", "geo_checkpoint"),
    "onnx_fp16": ("geo_export_all", "geo_checkpoint"),
    "onnx_int8": ("geo_export_all", "geo_checkpoint"),
    "onnx_int8_static": ("geo_export_all", "geo_checkpoint"),
    "tflite": ("geo_export_all", "geo_checkpoint"),
    "tflite_fp16": ("geo_export_all", "geo_checkpoint"),
    "tflite_int8": ("geo_export_all", "geo_checkpoint"),
    "tflite_int8_full": ("geo_export_all", "geo_checkpoint"),
    "tf": ("geo_export_all", "geo_checkpoint"),
}


def test_every_registered_format_has_a_round_trip_case():
    missing = sorted(set(FORMATS.names()) - set(ROUND_TRIP_CASES))
    assert not missing, f"registered formats without a round-trip test: {missing}"


@pytest.mark.parametrize("fmt_name", FORMATS.names())
def test_round_trip(fmt_name, request):
    from edgeport.sources import load_source

    export_fixture, source_fixture = ROUND_TRIP_CASES[fmt_name]
    outdir = request.getfixturevalue(export_fixture)
    handle = load_source(request.getfixturevalue(source_fixture))
    manifest = json.loads((outdir / "manifest.json").read_text())
    art = {a["format"]: a for a in manifest["artifacts"]}.get(fmt_name)
    assert art is not None, f"{fmt_name} was not exported by the session export"
    assert art["status"] == "passed", f"{fmt_name}: {art['error'] or art['validation']['failures']}"
    fmt = FORMATS.get(fmt_name)
    assert art["file"] == fmt.artifact_name(handle.name)

    # Independently of the pipeline: run the kept artifact and the source model on the golden inputs.
    from edgeport.export import load_golden

    golden = load_golden(outdir / art["golden_vectors"])
    feeds, stored_ref = golden["inputs"], golden["reference"]
    ref, failed_ref = runner_class("torch").from_handle(handle).run(feeds)
    assert not failed_ref.any()
    for k in ref:
        np.testing.assert_allclose(ref[k], stored_ref[k], rtol=0, atol=1e-6)
    got, failed = open_runner(fmt.runtime, outdir / art["file"]).run(feeds)
    cmp = compare(ref, got, gate_for(fmt_name), failed=failed)
    assert cmp.passed, cmp.failures
    assert set(got) == set(handle.output_names)
    for k, stored in golden["artifact"].items():  # the artifact's own outputs, or the tolerance they meet
        if stored is None:
            assert np.abs(got[k] - stored_ref[k]).max() <= golden["tolerance"][k]
        else:
            np.testing.assert_allclose(got[k], stored, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt_name", [f for f in FORMATS.names() if FORMATS.get(f).runtime == "litert"])
def test_tflite_artifact_resized_to_batch_7_matches_batch_1(fmt_name, request):
    """The pipeline judged every TFLite artifact at batch 1 and 7 through resize_tensor_input; check it did,
    and check it again independently, every row against batch-1 runs and the source."""
    from edgeport.sources import load_source
    from tests._support.resize import resized_rows

    export_fixture, source_fixture = ROUND_TRIP_CASES[fmt_name]
    outdir = request.getfixturevalue(export_fixture)
    handle = load_source(request.getfixturevalue(source_fixture))
    art = {a["format"]: a for a in json.loads((outdir / "manifest.json").read_text())["artifacts"]}[fmt_name]
    assert art["notes"]["dynamic_batch"] is True and art["batch"].startswith("dynamic")
    assert set(art["notes"]["resize_check"]) == {"1", "7"}
    assert all(c["passed"] for c in art["notes"]["resize_check"].values())
    feeds = handle.reference_inputs(30, 11)
    at7 = resized_rows(outdir / art["file"], feeds, fmt_name)
    ref, _ = runner_class("torch").from_handle(handle).run(feeds)
    assert compare(ref, at7, gate_for(fmt_name)).passed

"""Every registered format, exported from a real source and compared number by number with it.

``ROUND_TRIP_CASES`` names, for each format, the session export that covers it; the meta-test fails when
a registered format has none.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.exporters import FORMATS
from edgeport.runtimes import open_runner, runner_class
from edgeport.validation import compare, gate_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("geo_export")]

#: format -> fixture holding an ExportResult that includes it
ROUND_TRIP_CASES = {
    "onnx": "geo_export_all",
    "onnx_fp16": "geo_export_all",
    "onnx_int8": "geo_export_all",
    "onnx_int8_static": "geo_export_all",
    "tflite": "geo_export_all",
    "tflite_fp16": "geo_export_all",
    "tflite_int8": "geo_export_all",
    "tflite_int8_full": "geo_export_all",
    "tf": "geo_export_all",
}


def test_every_registered_format_has_a_round_trip_case():
    missing = sorted(set(FORMATS.names()) - set(ROUND_TRIP_CASES))
    assert not missing, f"registered formats without a round-trip test: {missing}"


@pytest.mark.parametrize("fmt_name", FORMATS.names())
def test_round_trip(fmt_name, request):
    result = request.getfixturevalue(ROUND_TRIP_CASES[fmt_name])
    art = {a.format: a for a in result.artifacts}.get(fmt_name)
    assert art is not None, f"{fmt_name} was not exported by the session export"
    assert art.status == "passed", f"{fmt_name}: {art.error or art.comparison.failures}"
    fmt = FORMATS.get(fmt_name)
    assert art.path.name == fmt.artifact_name(result.handle.name)

    # Independently of the pipeline: run the kept artifact and the source model on the golden inputs.
    with np.load(art.golden) as g:
        feeds = {k.removeprefix("input__"): g[k] for k in g.files if k.startswith("input__")}
        stored_ref = {k.removeprefix("reference__"): g[k] for k in g.files if k.startswith("reference__")}
    ref, failed_ref = runner_class("torch").from_handle(result.handle).run(feeds)
    assert not failed_ref.any()
    for k in ref:
        np.testing.assert_allclose(ref[k], stored_ref[k], rtol=0, atol=1e-6)
    got, failed = open_runner(fmt.runtime, art.path).run(feeds)
    cmp = compare(ref, got, gate_for(fmt_name), failed=failed)
    assert cmp.passed, cmp.failures
    assert set(got) == set(result.handle.output_names)

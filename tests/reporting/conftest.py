"""One small export folder (FP32 ONNX, INT8 ONNX, FP32 TFLite of a tiny geo-like torch model) per test run."""

from __future__ import annotations

import pytest

from tests._support.shared import shared_dir

#: the formats of the bench folder: FP32 + INT8 ONNX + TFLite
BENCH_FORMATS = ("onnx", "onnx_int8", "tflite")


@pytest.fixture(scope="session")
def bench_export(tmp_path_factory):
    from edgeport.export import ExportConfig, export_handle
    from tests._support.torch_models import geo_handle

    with shared_dir(tmp_path_factory, "bench_export") as (d, built):
        out = d / "exports"
        if not built:
            result = export_handle(geo_handle(n_species=24, dim=32, blocks=1),
                                   ExportConfig(formats=BENCH_FORMATS, outdir=out))
            assert result.passed, [a.error or a.comparison.failures for a in result.artifacts]
    return out

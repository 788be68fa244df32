"""Every registered format, exported from every kind of source and compared number by number with it.

``SOURCE_KINDS`` names, for each kind of source (a family's torch checkpoint, a user's model class through
``--factory``, a ``.keras`` audio model with its data folder), the session export (``edgeport.export`` to
every format of its framework) and the source it was made from; the meta-test fails when a registered
format or a framework edgeport loads has no case.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.exporters import FORMATS, gate_for
from edgeport.runtimes import open_runner, runner_class
from edgeport.validation import compare
from tests.conversion.conftest import audio_folder, trained_model  # noqa: F401 - the session's DS-CNN

pytestmark = pytest.mark.slow

#: every kind of source, each exported once per run to every format that applies to its framework:
#: kind -> (framework, fixture giving the export folder, fixture giving a loader of the source it was made from)
SOURCE_KINDS = {
    "torch checkpoint (geo family)": ("torch", "geo_export_all", "geo_source"),
    "torch checkpoint + --factory (a user's model class)": ("torch", "factory_export_all", "factory_source"),
    ".keras audio model + data folder": ("keras", "keras_export_all", "keras_source"),
}
#: frameworks edgeport loads (sources/__init__.py); each needs a kind above
LOADABLE_FRAMEWORKS = ("torch", "keras")
CASES = [(kind, f) for kind, (fw, _, _) in SOURCE_KINDS.items() for f in FORMATS.names() if fw in FORMATS.get(f).frameworks]
#: known misses, each strict (an unexpected pass fails the run, so the mark is dropped once fixed). The tiny
#: 12-epoch hybrid DS-CNN: onnx_int8_static top-1 0.90 (gate 0.98) with cosine 0.9946 (gate 0.99); the rows that
#: flip are chunks the model scores 0.3-0.5 for two classes, and the INT8 error (max 0.17 on held-out rows, 0.19
#: on the calibration rows themselves) is not a calibration-coverage gap: reduce_range off, Conv/MatMul only and
#: percentile calibration gave top-1 0.93, 0.95 and 0.94.
KNOWN_MISSES = {(".keras audio model + data folder", "onnx_int8_static"):
                "tiny barely trained DS-CNN: onnx_int8_static top-1 agreement below its 0.98 gate"}


def _cases(cases):
    return [pytest.param(*c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[c])) if c in KNOWN_MISSES
            else c for c in cases]
USER_CONFIG = {"n_species": 24, "hidden": 48, "harmonics": 4}


@pytest.fixture(scope="session")
def geo_source(geo_checkpoint):
    from edgeport.sources import load_source

    return lambda: load_source(geo_checkpoint)


@pytest.fixture(scope="session")
def factory_module(tmp_path_factory):
    """A user's model module (not part of edgeport) and a checkpoint of its ``RangeNet``, importable by name."""
    import sys

    import torch

    from tests._support.shared import shared_dir
    from tests.pipeline.user_models_src import SOURCE

    with shared_dir(tmp_path_factory, "round_trip_user_model") as (d, built):
        if not built:
            (d / "round_trip_user_models.py").write_text(SOURCE)
    sys.path.insert(0, str(d))
    import round_trip_user_models as mod

    ckpt = d / "range.pt"
    if not ckpt.exists():
        torch.manual_seed(0)
        torch.save({"model_config": USER_CONFIG, "model_state_dict": mod.build(**USER_CONFIG).state_dict()}, ckpt)
    yield ckpt
    sys.path.remove(str(d))


@pytest.fixture(scope="session")
def factory_source(factory_module):
    from edgeport.sources import load_source

    return lambda: load_source(factory_module, factory="round_trip_user_models:build", wrapper="geo")


@pytest.fixture(scope="session")
def factory_export_all(factory_module, tmp_path_factory):
    """``edgeport.export(range.pt, factory=..., wrapper="geo", formats=["all"])``, once per run."""
    import edgeport
    from tests._support.shared import shared_dir

    with shared_dir(tmp_path_factory, "round_trip_user_export") as (d, built):
        if not built:
            edgeport.export(factory_module, factory="round_trip_user_models:build", wrapper="geo",
                            formats=["all"], outdir=d / "exports")
    return d / "exports"


@pytest.fixture(scope="session")
def keras_source(trained_model, audio_folder):  # noqa: F811
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data

    def load():
        handle = load_source(trained_model("hybrid"))
        attach_audio_data(handle, audio_folder, progress=False)
        return handle

    return load


@pytest.fixture(scope="session")
def keras_export_all(trained_model, audio_folder, tmp_path_factory):  # noqa: F811
    """``edgeport.export(tiny.keras, data_path=folder, formats=["all"])``, once per run."""
    import edgeport
    from tests._support.shared import shared_dir

    with shared_dir(tmp_path_factory, "round_trip_keras_export") as (d, built):
        if not built:
            edgeport.export(trained_model("hybrid"), data_path=audio_folder, formats=["all"], outdir=d / "exports",
                            progress=False)
    return d / "exports"


def test_every_registered_format_has_a_round_trip_case():
    """Every kind of source is exported to every format of its framework, and every framework edgeport loads
    has a kind: a new format or a new kind of source without a round trip fails here."""
    frameworks = {fw for fw, _, _ in SOURCE_KINDS.values()}
    assert set(LOADABLE_FRAMEWORKS) <= frameworks, f"no round-trip source for {set(LOADABLE_FRAMEWORKS) - frameworks}"
    covered = {f for _, f in CASES}
    missing = sorted(set(FORMATS.names()) - covered)
    assert not missing, f"registered formats without a round-trip test: {missing}"
    for kind, (fw, _, _) in SOURCE_KINDS.items():
        want = {f for f in FORMATS.names() if fw in FORMATS.get(f).frameworks}
        assert want == {f for k, f in CASES if k == kind}, kind


def _manifest_artifact(outdir, fmt_name) -> dict:
    manifest = json.loads((outdir / "manifest.json").read_text())
    art = {a["format"]: a for a in manifest["artifacts"]}.get(fmt_name)
    assert art is not None, f"{fmt_name} was not exported by the session export"
    return art


@pytest.mark.parametrize(("kind", "fmt_name"), _cases(CASES))
def test_round_trip(kind, fmt_name, request):
    _, export_fixture, source_fixture = SOURCE_KINDS[kind]
    outdir = request.getfixturevalue(export_fixture)
    handle = request.getfixturevalue(source_fixture)()
    art = _manifest_artifact(outdir, fmt_name)
    assert art["status"] == "passed", f"{fmt_name}: {art['error'] or art['validation']['failures']}"
    fmt = FORMATS.get(fmt_name)
    assert art["file"] == fmt.artifact_name(handle.name)

    # Independently of the pipeline: run the kept artifact and the source model on the golden inputs.
    from edgeport.export import load_golden

    golden = load_golden(outdir / art["golden_vectors"])
    feeds, stored_ref = golden["inputs"], golden["reference"]
    ref, failed_ref = runner_class(handle.framework).from_handle(handle).run(feeds)
    assert not failed_ref.any()
    for k in ref:
        np.testing.assert_allclose(ref[k], stored_ref[k], rtol=0, atol=1e-6)
    runner = open_runner(fmt.runtime, outdir / art["file"])
    got, failed = runner.run(feeds)
    assert not failed.any(), f"{int(failed.sum())} golden rows failed to run in {fmt.runtime}"
    assert set(got) == set(handle.output_names)
    # the gate, judged here on the rows the pipeline judged (the 32 golden rows alone are too few for a
    # top-1 gate of 0.98: one flipped row misses it), drawn again from the source's own reference inputs
    ri = json.loads((outdir / "manifest.json").read_text())["reference_inputs"]
    rows = feeds  # a source without reference inputs was judged on seeded noise: its golden rows stand for it
    if handle.reference_inputs is not None:
        rows = handle.reference_inputs(ri["rows"], ri["seeds"][0])
        assert len(next(iter(rows.values()))) == ri["rows"]
    rows_ref, rows_failed_ref = runner_class(handle.framework).from_handle(handle).run(rows)
    rows_got, rows_failed = runner.run(rows)
    assert not rows_failed_ref.any()
    cmp = compare(rows_ref, rows_got, gate_for(fmt_name), failed=rows_failed)
    assert cmp.passed, cmp.failures
    for k, stored in golden["artifact"].items():  # the artifact's own outputs, or the tolerance they meet
        if stored is None:
            assert np.abs(got[k] - stored_ref[k]).max() <= golden["tolerance"][k]
        else:
            np.testing.assert_allclose(got[k], stored, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("kind", "fmt_name"), [c for c in CASES if FORMATS.get(c[1]).runtime == "litert"])
def test_tflite_artifact_resized_to_batch_7_matches_batch_1(kind, fmt_name, request):
    """The pipeline judged every TFLite artifact at batch 1 and 7 through resize_tensor_input; check it did,
    and check it again independently, every row against batch-1 runs and the source."""
    from tests._support.resize import resized_rows

    _, export_fixture, source_fixture = SOURCE_KINDS[kind]
    outdir = request.getfixturevalue(export_fixture)
    handle = request.getfixturevalue(source_fixture)()
    art = _manifest_artifact(outdir, fmt_name)
    assert art["notes"]["dynamic_batch"] is True and art["batch"].startswith("dynamic")
    assert set(art["notes"]["resize_check"]) == {"1", "7"}
    assert all(c["passed"] for c in art["notes"]["resize_check"].values())
    feeds = handle.reference_inputs(30, 11)
    at7 = resized_rows(outdir / art["file"], feeds, fmt_name)
    ref, _ = runner_class(handle.framework).from_handle(handle).run(feeds)
    assert compare(ref, at7, gate_for(fmt_name)).passed

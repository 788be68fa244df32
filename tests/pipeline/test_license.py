"""The model's licence travels with the export: ``--license FILE``, or ``MODEL_LICENSE.txt`` in the folder of
the factory's module; copied into the export folder (never through a symlink), named in the manifest, and a
warning when an export has none. One fast ONNX export of the user's model per case."""

from __future__ import annotations

import logging

import pytest

from edgeport.cli.main import main
from tests.pipeline.test_user_models import _export, _save_checkpoint, user_dir  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ARGS = ("--factory", "my_range_models:build", "--wrapper", "geo", "--formats", "onnx")


def test_factory_package_licence_is_copied_and_named(user_dir, capsys):  # noqa: F811
    ckpt_dir = user_dir / "weights"
    ckpt_dir.mkdir()
    (user_dir / "MODEL_LICENSE.txt").write_text("CC BY-SA 4.0\n")  # beside my_range_models.py
    ckpt = _save_checkpoint(user_dir, "build").rename(ckpt_dir / "range.pt")
    code, m = _export(capsys, ckpt, *ARGS, "--outdir", user_dir / "out")
    assert code == 0, m["_printed"]
    assert m["license_file"] == "MODEL_LICENSE.txt"
    assert (user_dir / "out" / "MODEL_LICENSE.txt").read_text() == "CC BY-SA 4.0\n"


def test_license_flag_replaces_a_symlink_instead_of_writing_through_it(user_dir, capsys):  # noqa: F811
    ckpt = _save_checkpoint(user_dir, "build")
    lic = user_dir / "TERMS.txt"
    lic.write_text("weights: CC BY 4.0\n")
    out = user_dir / "out"
    out.mkdir()
    victim = user_dir / "victim.txt"
    victim.write_text("keep me\n")
    (out / "TERMS.txt").symlink_to(victim)
    code, m = _export(capsys, ckpt, *ARGS, "--license", lic, "--outdir", out, "--force")
    assert code == 0, m["_printed"]
    assert m["license_file"] == "TERMS.txt"
    assert not (out / "TERMS.txt").is_symlink() and (out / "TERMS.txt").read_text() == "weights: CC BY 4.0\n"
    assert victim.read_text() == "keep me\n"


def test_missing_license_file_is_refused_and_no_license_warns(user_dir, capsys, caplog):  # noqa: F811
    ckpt = _save_checkpoint(user_dir, "build")
    code = main(["export", str(ckpt), *ARGS, "--license", str(user_dir / "nope.txt"), "--outdir",
                 str(user_dir / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "--license" in err and "nope.txt" in err
    assert not (user_dir / "bad" / "manifest.json").exists()
    with caplog.at_level(logging.WARNING, logger="edgeport.export"):
        code, m = _export(capsys, ckpt, *ARGS, "--outdir", user_dir / "out")
    assert code == 0 and m["license_file"] is None
    assert any("no licence file" in r.getMessage() for r in caplog.records)

"""``edgeport demo``'s guard rails (the demo itself runs in ``make demo``; it takes minutes)."""

from __future__ import annotations

import pytest

from edgeport.cli.main import main


def test_demo_refuses_a_non_empty_outdir_without_force(tmp_path, capsys):
    out = tmp_path / "demo_out"
    out.mkdir()
    keep = out / "earlier.txt"
    keep.write_text("an earlier demo")
    assert main(["demo", "--outdir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and str(out) in err
    assert keep.read_text() == "an earlier demo"


def test_demo_parts_are_checked(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--parts", "image"])
    assert e.value.code == 2
    assert "invalid choice: 'image'" in capsys.readouterr().err

"""``fileio.OutputPlan`` with a folder output (the hierarchy export's ``disease-heads/``): staged as one folder,
replaced as a whole on commit, a symlinked folder replaced by the folder (its target untouched), and an abort
leaving the earlier folder as it was."""

from __future__ import annotations

import pytest

from edgeport.errors import ConfigError
from edgeport.fileio import STAGING, OutputPlan


def _plan(out, force):
    plan = OutputPlan(force=force)
    plan.add(out / "heads")
    plan.add(out / "list.json")
    plan.check()
    return plan


def test_folder_output_replaced_as_a_whole_and_abort_keeps_the_earlier(tmp_path):
    out = tmp_path / "out"
    (out / "heads").mkdir(parents=True)
    (out / "heads" / "old.onnx").write_text("old")
    with pytest.raises(ConfigError, match="heads"):
        _plan(out, force=False)
    with _plan(out, force=True) as plan:  # interrupted: nothing committed
        (plan.staged(out / "heads")).mkdir()
        (plan.staged(out / "heads") / "new.onnx").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["heads"]
    assert [p.name for p in (out / "heads").iterdir()] == ["old.onnx"]
    with _plan(out, force=True) as plan:
        (plan.staged(out / "heads")).mkdir()
        (plan.staged(out / "heads") / "new.onnx").write_text("new")
        plan.staged(out / "list.json").write_text("{}")
        plan.commit(prune=True)
    assert sorted(p.name for p in out.iterdir()) == ["heads", "list.json"]  # no staging left, no .heads.old
    assert [p.name for p in (out / "heads").iterdir()] == ["new.onnx"]  # the earlier file went with its folder
    assert not (out / STAGING).exists()


def test_symlinked_folder_output_is_replaced_not_written_through(tmp_path):
    out, target = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    target.mkdir()
    (target / "theirs.onnx").write_text("theirs")
    (out / "heads").symlink_to(target, target_is_directory=True)
    with pytest.raises(ConfigError, match="symlinks"):
        _plan(out, force=False)
    with _plan(out, force=True) as plan:
        plan.staged(out / "heads").mkdir()
        (plan.staged(out / "heads") / "new.onnx").write_text("new")
        plan.commit(prune=True)
    assert not (out / "heads").is_symlink() and [p.name for p in (out / "heads").iterdir()] == ["new.onnx"]
    assert [p.name for p in target.iterdir()] == ["theirs.onnx"]

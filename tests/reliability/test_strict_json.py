"""Every JSON edgeport writes is standard JSON: NaN and infinities become null with the reason beside."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgeport.fileio import atomic_write_json, strict_json
from tests._support.strict_json import strict_load


def test_non_finite_numbers_become_null_with_their_reason(tmp_path):
    data = {"auc": float("nan"), "loss": np.float32("inf"), "ok": 0.5, "low": -math.inf,
            "per_class": [0.9, float("nan"), np.float64(0.1)], "arr": np.array([1.0, np.inf]),
            "nested": {"best_val_loss": float("inf")}, "n": np.int64(3), "flag": np.bool_(True)}
    atomic_write_json(tmp_path / "x.json", data)
    got = strict_load(tmp_path / "x.json")
    assert got["auc"] is None and got["auc_null_reason"].startswith("NaN")
    assert got["loss"] is None and got["loss_null_reason"] == "+infinity"
    assert got["low"] is None and got["low_null_reason"] == "-infinity"
    assert got["ok"] == 0.5 and got["n"] == 3 and got["flag"] is True
    assert got["per_class"] == [0.9, None, 0.1] and "NaN" in got["per_class_null_reason"]
    assert got["arr"] == [1.0, None] and "+infinity" in got["arr_null_reason"]
    assert got["nested"] == {"best_val_loss": None, "best_val_loss_null_reason": "+infinity"}


def test_strict_json_is_plain_json_when_everything_is_finite():
    data = {"a": [1, 2.5, "x", None, True], "b": {"c": 1e-9}}
    assert json.loads(strict_json(data)) == data


def test_the_strict_reader_refuses_bare_nan(tmp_path):
    (tmp_path / "bad.json").write_text('{"a": NaN}')
    with pytest.raises(ValueError, match="NaN"):
        strict_load(tmp_path / "bad.json")


def test_docs_list_every_case():
    from pathlib import Path

    from tests.reliability.cases import CASES, SIGNAL_CASES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    missing = [c.id for c in [*CASES, *SIGNAL_CASES] if f"| {c.id} |" not in doc]
    assert not missing, f"docs/reliability.md lacks {missing}: run python tools/reliability_table.py"

import subprocess
import sys

import numpy as np
import pytest

from edgeport.errors import ConfigError, DataError
from edgeport.families.geo import (
    FAMILY,
    HARD_CASES,
    INPUT_NAME,
    MODEL_NAME,
    Label,
    calibration_inputs,
    read_labels,
    reference_inputs,
    write_labels,
)


def test_constants():
    assert (FAMILY, MODEL_NAME, INPUT_NAME) == ("geo", "geomodel", "input")


def test_reference_inputs_shape_ranges_and_hard_cases():
    x = reference_inputs()[INPUT_NAME]
    assert x.shape == (200, 3) and x.dtype == np.float32
    lat, lon, week = x.T
    assert lat.min() >= -90 and lat.max() <= 90 and lon.min() >= -180 and lon.max() <= 180
    assert set(np.unique(week)) <= set(range(1, 49)) and np.all(week == np.round(week))
    for value in (90, -90):
        assert np.any(lat == value)
    for value in (180, -180, 0):
        assert np.any(lon == value)
    for value in (1, 48):
        assert np.any(week == value)
    rows = {tuple(r) for r in x}
    assert all(tuple(r) in rows for r in HARD_CASES)
    assert len(np.unique(week)) > 30  # the random part spans the year


def test_reference_inputs_deterministic_and_seeded():
    a, b, c = reference_inputs(seed=0)[INPUT_NAME], reference_inputs(seed=0)[INPUT_NAME], reference_inputs(seed=1)[INPUT_NAME]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(reference_inputs(50)[INPUT_NAME][:12], a[:12])


def test_reference_inputs_small_n_gives_hard_cases_first():
    assert np.array_equal(reference_inputs(5)[INPUT_NAME], HARD_CASES[:5])
    with pytest.raises(ConfigError, match="n >= 1"):
        reference_inputs(0)


def test_calibration_inputs_own_stream():
    cal = calibration_inputs(300, seed=0)[INPUT_NAME]
    ref = reference_inputs(300, seed=0)[INPUT_NAME]
    assert cal.shape == (300, 3) and cal.dtype == np.float32
    assert np.array_equal(cal, calibration_inputs(300, seed=0)[INPUT_NAME])
    assert not set(map(tuple, cal[4:])) & set(map(tuple, ref))
    assert cal[:, 0].min() == -90 and cal[:, 0].max() == 90 and cal[:, 1].min() == -180 and cal[:, 1].max() == 180
    assert set(np.unique(cal[:, 2])) <= set(range(1, 49)) and len(np.unique(cal[:, 2])) > 40


def test_labels_round_trip(tmp_path):
    rows = [Label("sp0001", "Synthornis borealis", "Northern Mock-warbler 1"), ("sp0002", "Fictospiza rara", "Élusive Finch")]
    write_labels(tmp_path / "labels.txt", rows)
    assert read_labels(tmp_path / "labels.txt") == [tuple(r) for r in rows]
    assert (tmp_path / "labels.txt").read_text(encoding="utf-8").splitlines()[1] == "sp0002\tFictospiza rara\tÉlusive Finch"


def test_labels_bad_input(tmp_path):
    (tmp_path / "bad.txt").write_text("sp0001\tOnly two\n")
    with pytest.raises(DataError, match="bad.txt:1"):
        read_labels(tmp_path / "bad.txt")
    with pytest.raises(DataError, match="does not exist"):
        read_labels(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="tabs"):
        write_labels(tmp_path / "x.txt", [("a", "b\tc", "d")])


def test_family_import_does_not_load_torch():
    code = "import sys, edgeport.families.geo as g; g.reference_inputs(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

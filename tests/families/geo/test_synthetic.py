import numpy as np
import torch

from edgeport.families.geo import read_labels
from edgeport.families.geo.checkpoint import read_checkpoint
from edgeport.families.geo.model import GeoModel
from edgeport.families.geo.synthetic import (
    KINDS,
    SpeciesMaps,
    env_fit_error,
    is_non_trivial,
    make_geo_checkpoint,
    map_fit_error,
    synthetic_labels,
)

SYNTH_SPECIES = 64  # as in the root conftest's geo_checkpoint (seed 0)


def test_synthetic_checkpoint_is_non_trivial(geo_synthetic_model):
    ok, details = is_non_trivial(geo_synthetic_model)
    assert ok, details
    assert details["prob_min"] <= 0.01 and details["prob_max"] >= 0.9
    assert details["distinct_top1_per_week_min"] >= 2 and details["locations_top1_changes_with_week"] >= 1
    # The fit follows the invented maps, not just their extremes.
    assert map_fit_error(geo_synthetic_model, SpeciesMaps.generate(SYNTH_SPECIES, seed=0))["mae"] < 0.05


def test_env_head_is_fitted(geo_synthetic_model):
    torch.manual_seed(0)
    untrained = env_fit_error(GeoModel(SYNTH_SPECIES, model_scale=0.25).eval())
    fitted = env_fit_error(geo_synthetic_model)
    assert fitted < 0.1 < untrained


def test_untrained_model_is_trivial():
    torch.manual_seed(0)
    ok, details = is_non_trivial(GeoModel(SYNTH_SPECIES, model_scale=0.25))
    assert not ok
    assert not (details["checks"]["span_low"] and details["checks"]["span_high"])


def test_files_beside_checkpoint(geo_checkpoint):
    path = geo_checkpoint
    labels = read_labels(path.parent / "labels.txt")
    assert len(labels) == SYNTH_SPECIES == read_checkpoint(path)["model_config"]["n_species"]
    assert labels[0].code == "sp0001"
    assert len({lab.code for lab in labels}) == len({lab.scientific for lab in labels}) == SYNTH_SPECIES
    licence = (path.parent / "MODEL_LICENSE.txt").read_text()
    assert "CC BY-SA 4.0" in licence and "SYNTHETIC" in licence


def test_maps_cover_every_kind_and_migrants_move():
    maps = SpeciesMaps.generate(200, seed=3)
    assert set(np.unique(maps.kind)) == set(range(len(KINDS)))
    migrant = int(np.flatnonzero(maps.kind == KINDS.index("migrant"))[0])
    lat0, lon0 = float(maps.lat[migrant, 0]), float(maps.lon[migrant, 0])
    swing = float(maps.lat_swing[migrant])
    week_north = float(maps.peak_week[migrant])
    weeks = torch.tensor([week_north, week_north + 24])
    north = maps.probabilities(torch.full((2,), lat0 + swing), torch.full((2,), lon0), weeks)[:, migrant]
    assert north[0] > 0.5 and north[1] < 0.1 * north[0]  # present in its breeding range in season only


def test_synthetic_labels_unique_at_scale():
    labels = synthetic_labels(SpeciesMaps.generate(3000, seed=0))
    assert len({lab.scientific for lab in labels}) == 3000
    assert all("\t" not in "".join(lab) for lab in labels)


def test_deterministic_for_a_seed(tmp_path):
    kwargs = {"n_species": 8, "model_scale": 0.25, "steps": 3, "seed": 5, "progress": False}
    summary = make_geo_checkpoint(tmp_path / "a" / "c.pt", **kwargs)
    model = GeoModel(8, model_scale=0.25)
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    assert summary["n_species"] == 8 and summary["steps"] == 3 and summary["seconds"] > 0
    assert {"final_loss", "prob_min", "prob_max", "distinct_top1", "non_trivial", "map_mae"} <= set(summary)
    make_geo_checkpoint(tmp_path / "b" / "c.pt", **kwargs)
    make_geo_checkpoint(tmp_path / "c" / "c.pt", **{**kwargs, "seed": 6})
    a, b, c = (read_checkpoint(tmp_path / d / "c.pt")["model_state_dict"] for d in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "labels.txt").read_text() == (tmp_path / "b" / "labels.txt").read_text()

import pickle

import pytest
import torch

from edgeport.errors import SourceError
from edgeport.families.geo import read_labels
from edgeport.families.geo.checkpoint import (
    CONFIG_KEYS,
    build_from_config,
    load_checkpoint,
    save_checkpoint,
)
from edgeport.families.geo.model import GeoModel


def _inputs():
    return torch.tensor([52.5, -90.0, 0.0, 12.0]), torch.tensor([13.4, 180.0, -180.0, 0.0]), torch.tensor([22.0, 1.0, 48.0, 7.0])


def test_round_trip_weights_only(tmp_path):
    torch.manual_seed(1)
    model = GeoModel(9, n_env_features=3, model_scale=0.25, coord_harmonics=6, week_harmonics=4).eval()
    path = save_checkpoint(tmp_path / "ckpt.pt", model)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(CONFIG_KEYS) <= set(raw["model_config"])
    assert raw["model_config"] == {"n_species": 9, "n_env_features": 3, "model_scale": 0.25, "coord_harmonics": 6,
                                   "week_harmonics": 4}
    loaded, cfg = load_checkpoint(path)
    assert cfg == raw["model_config"] and not loaded.training
    with torch.no_grad():
        a, b = model(*_inputs(), return_env=True), loaded(*_inputs(), return_env=True)
    assert torch.equal(a["species_logits"], b["species_logits"]) and torch.equal(a["env"], b["env"])
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_build_from_config_both_call_styles():
    cfg = {"n_species": 5, "n_env_features": 2, "model_scale": 0.5, "coord_harmonics": 8, "week_harmonics": 8,
           "trainer_note": "ignored"}
    assert build_from_config(cfg).config == build_from_config(**cfg).config == {k: cfg[k] for k in CONFIG_KEYS}


def test_build_from_config_needs_n_species():
    with pytest.raises(SourceError, match="n_species"):
        build_from_config({"model_scale": 0.5})


def test_labels_written_beside_checkpoint(tmp_path):
    model = GeoModel(2, model_scale=0.25)
    rows = [("sp0001", "Synthornis rara", "Elusive Mock-wren 1"), ("sp0002", "Fictospiza viator", "Wandering Finch 2")]
    save_checkpoint(tmp_path / "c.pt", model, labels=rows)
    assert [tuple(r) for r in read_labels(tmp_path / "labels.txt")] == rows
    with pytest.raises(SourceError, match="labels"):
        save_checkpoint(tmp_path / "d.pt", model, labels=rows[:1])


def test_missing_checkpoint(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


class _Payload:
    pass


def test_unsafe_checkpoint_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_config": {"n_species": 2}, "model_state_dict": {}, "obj": _Payload()}, path)
    with pytest.raises(SourceError, match="weights_only"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(SourceError):
        load_checkpoint(path)


def test_not_a_geo_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(SourceError, match="model_config"):
        load_checkpoint(path)


def test_weights_not_matching_config(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, GeoModel(4, model_scale=0.25))
    raw = torch.load(path, weights_only=True)
    raw["model_config"]["n_species"] = 5
    torch.save(raw, path)
    with pytest.raises(SourceError, match="do not fit"):
        load_checkpoint(path)

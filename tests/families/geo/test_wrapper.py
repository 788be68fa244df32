import numpy as np
import pytest
import torch
from torch import nn

from edgeport.errors import SourceError
from edgeport.families.geo import (
    INPUT_NAME,
    KEEP_FLOAT,
    KEEP_FLOAT_INPUT_SIDE,
    OUTPUT_NAME,
    GeoExportWrapper,
    GeoModel,
    keep_float_scopes,
    reference_inputs,
    wrap_geo,
)


def test_names():
    assert (INPUT_NAME, OUTPUT_NAME) == ("input", "probabilities")


def test_wrapper_equals_sigmoid_of_model(geo_synthetic_model):
    x = torch.from_numpy(reference_inputs()["input"])
    wrapper = wrap_geo(geo_synthetic_model)
    with torch.no_grad():
        got = wrapper(x)
        want = torch.sigmoid(geo_synthetic_model(x[:, 0], x[:, 1], x[:, 2])["species_logits"])
    assert got.shape == (200, geo_synthetic_model.n_species)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_keep_float_paths_exist_in_wrapper():
    wrapper = GeoExportWrapper(GeoModel(5, model_scale=0.25))
    names = dict(wrapper.named_modules())
    assert KEEP_FLOAT == ("model.encoding",)
    assert all(p in names for p in KEEP_FLOAT_INPUT_SIDE)
    assert keep_float_scopes(wrapper) == KEEP_FLOAT_INPUT_SIDE


class UserGeo(nn.Module):
    """A user's own geo model with the same call signature and no ``encoding`` submodule."""

    def __init__(self, n_species=4):
        super().__init__()
        self.net = nn.Linear(3, n_species)

    def forward(self, lat, lon, week, return_env=False):
        return {"species_logits": self.net(torch.stack([lat / 90, lon / 180, week / 48], dim=1))}


def test_wrap_user_model():
    torch.manual_seed(0)
    user = UserGeo()
    wrapper = wrap_geo(user)
    x = torch.tensor([[10.0, 20.0, 3.0], [-45.0, 179.0, 48.0]])
    with torch.no_grad():
        torch.testing.assert_close(wrapper(x), torch.sigmoid(user(x[:, 0], x[:, 1], x[:, 2])["species_logits"]),
                                   rtol=0, atol=0)
    assert keep_float_scopes(wrapper) == ("columns",)


class WrongOutput(nn.Module):
    def forward(self, lat, lon, week, return_env=False):
        return torch.stack([lat, lon], 1)


class WrongSignature(nn.Module):
    def forward(self, x):
        return {"species_logits": x}


@pytest.mark.parametrize("bad", [WrongOutput(), WrongSignature(), "not a module"])
def test_wrap_refuses_models_breaking_the_contract(bad):
    with pytest.raises(SourceError, match="species_logits"):
        wrap_geo(bad)


@pytest.mark.slow
def test_wrapper_exports_to_onnx_with_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    wrapper = wrap_geo(GeoModel(11, model_scale=0.25))
    x = torch.from_numpy(reference_inputs()["input"])
    path = tmp_path / "geo.onnx"
    torch.onnx.export(wrapper, (x[:4],), str(path), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False, opset_version=18)
    session = ort.InferenceSession(str(path))
    for n in (1, 37, 200):
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x[:n].numpy()})[0]
        with torch.no_grad():
            want = wrapper(x[:n]).numpy()
        assert got.shape == (n, 11)
        assert np.abs(got - want).max() <= 1e-5

import math

import numpy as np
import pytest
import torch

from edgeport.families.geo.model import (
    GeoModel,
    HarmonicEncoding,
    count_parameters,
    geo_sizes,
)

# Exact parameter count of the reference size (SPEC §5: ~3.6 M at scale 0.75 with 12,012 species).
PARAMS_075_12012 = 3_661_948


def test_param_count_reference_size():
    model = GeoModel(12012, model_scale=0.75)
    n = count_parameters(model)
    assert n == PARAMS_075_12012
    assert 3.5e6 <= n <= 3.8e6
    assert n * 4 / 2**20 == pytest.approx(14.0, abs=0.5)  # ~14 MB as FP32


@pytest.mark.parametrize(
    "scale, embed, enc, spc, bottleneck",
    [
        (0.1, 64, 1, 1, 32),
        (0.25, 128, 1, 1, 32),
        (0.5, 256, 2, 1, 64),
        (0.75, 384, 3, 2, 96),
        (1.0, 512, 4, 2, 128),
        (1.5, 768, 6, 3, 192),
        (2.0, 1024, 8, 4, 256),
    ],
)
def test_sizes_follow_formula(scale, embed, enc, spc, bottleneck):
    sizes = geo_sizes(scale)
    assert sizes == {"embed_dim": embed, "encoder_blocks": enc, "species_blocks": spc, "head_bottleneck": bottleneck}
    model = GeoModel(10, model_scale=scale)
    assert model.embed.out_features == embed
    assert len(model.encoder) == enc and len(model.species_blocks) == spc
    assert model.species_down.out_features == bottleneck


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_bad_scale_refused(bad):
    with pytest.raises(ValueError, match="model_scale"):
        GeoModel(10, model_scale=bad)


def test_forward_shapes_and_env():
    model = GeoModel(7, n_env_features=5, model_scale=0.25).eval()
    lat, lon, week = torch.tensor([52.5, -90.0, 0.0]), torch.tensor([13.4, 180.0, 0.0]), torch.tensor([22.0, 1.0, 48.0])
    out = model(lat, lon, week)
    assert set(out) == {"species_logits"} and out["species_logits"].shape == (3, 7)
    out_env = model(lat, lon, week, return_env=True)
    assert out_env["env"].shape == (3, 5)
    assert torch.equal(out_env["species_logits"], out["species_logits"])


def test_encoding_is_its_own_submodule_and_matches_formula():
    model = GeoModel(3, model_scale=0.25, coord_harmonics=4, week_harmonics=3)
    assert isinstance(dict(model.named_modules())["encoding"], HarmonicEncoding)
    lat, lon, week = np.array([52.5, -90.0]), np.array([13.4, 180.0]), np.array([22.0, 48.0])
    feats, week_enc = model.encoding(*(torch.tensor(a, dtype=torch.float32) for a in (lat, lon, week)))
    k4, k3 = np.arange(1, 5), np.arange(1, 4)
    la, lo = np.radians(lat)[:, None] * k4, np.radians(lon)[:, None] * k4
    wk = (2 * math.pi * (week - 1) / 48)[:, None] * k3
    expected_week = np.concatenate([np.sin(wk), np.cos(wk)], 1)
    expected = np.concatenate([np.sin(la), np.cos(la), np.sin(lo), np.cos(lo), expected_week], 1)
    np.testing.assert_allclose(feats.numpy(), expected, atol=2e-6)
    np.testing.assert_allclose(week_enc.numpy(), expected_week, atol=2e-6)
    assert feats.shape[1] == model.encoding.out_features == model.embed.in_features


def test_layernorm_eps_and_exact_gelu():
    model = GeoModel(3, model_scale=0.25)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    gelus = [m for m in model.modules() if isinstance(m, torch.nn.GELU)]
    assert norms and all(m.eps == 1e-4 for m in norms)
    assert gelus and all(m.approximate == "none" for m in gelus)


def test_encoding_buffers_not_in_state_dict():
    # Frequencies are derived from the config, so checkpoints hold only learned weights.
    assert not any(k.startswith("encoding.") for k in GeoModel(3, model_scale=0.25).state_dict())

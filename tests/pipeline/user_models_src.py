'''Source of a user's own model module, written into a test's folder (so it is not part of edgeport).

Two model classes:
- ``RangeNet``: the geo call signature ``(lat, lon, week, return_env=False) -> {"species_logits": ...}``,
  exported with ``--wrapper geo``;
- ``PackedRangeNet``: a different signature ``(latlon (B, 2), week (B, 1)) -> logits``, exported with the
  user's own wrapper ``wrap_packed`` (which declares its inputs and outputs).
'''

SOURCE = r'''
import math
import torch
from torch import nn


def _encode(lat, lon, week, k):
    a = torch.stack([lat * (math.pi / 180.0), lon * (math.pi / 180.0), (week - 1.0) * (2 * math.pi / 48.0)], dim=1)
    ka = a.unsqueeze(-1) * k
    return torch.cat([torch.sin(ka), torch.cos(ka)], dim=-1).flatten(1)


class RangeNet(nn.Module):
    def __init__(self, n_species=24, hidden=48, harmonics=4):
        super().__init__()
        self.register_buffer("k", torch.arange(1, harmonics + 1, dtype=torch.float32))
        self.body = nn.Sequential(nn.Linear(6 * harmonics, hidden), nn.LayerNorm(hidden, eps=1e-4), nn.GELU(),
                                  nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, n_species)
        self.env = nn.Linear(hidden, 3)

    def forward(self, lat, lon, week, return_env=False):
        h = self.body(_encode(lat, lon, week, self.k))
        out = {"species_logits": self.head(h)}
        if return_env:
            out["env"] = self.env(h)
        return out


class PackedRangeNet(RangeNet):
    def forward(self, latlon, week):
        return super().forward(latlon[:, 0], latlon[:, 1], week[:, 0])["species_logits"]


def build(n_species=24, hidden=48, harmonics=4):
    torch.manual_seed(0)
    m = RangeNet(n_species=n_species, hidden=hidden, harmonics=harmonics)
    with torch.no_grad():  # spread the outputs so validation is not vacuous
        m.head.weight.mul_(6.0)
    return m


def build_packed(n_species=24, hidden=48, harmonics=4):
    torch.manual_seed(0)
    m = PackedRangeNet(n_species=n_species, hidden=hidden, harmonics=harmonics)
    with torch.no_grad():
        m.head.weight.mul_(6.0)
    return m


class PackedWrapper(nn.Module):
    edgeport_inputs = {"coords": (None, 3)}
    edgeport_outputs = ["scores"]

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, coords):
        latlon, week = torch.split(coords, [2, 1], dim=1)
        return torch.sigmoid(self.model(latlon, week))


def wrap_packed(model):
    return PackedWrapper(model)
'''

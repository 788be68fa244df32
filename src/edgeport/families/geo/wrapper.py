"""Export wrapper for geo models: one ``(batch, 3)`` float input [lat, lon, week] -> sigmoid probabilities.

Every format shares this interface (SPEC §2). The columns are split with ``torch.split`` (one ONNX
``Split`` / TFLite ``SPLIT`` op, no weights): measured with torch 2.13 / litert-torch 0.10, indexing
(``x[:, 0]``), ``unbind``, ``split`` and a selector ``matmul`` all export with a dynamic batch through
torch.onnx (dynamo) and with a fixed batch through litert-torch, while litert-torch's dynamic batch fails
for every variant (it fails on a bare ``nn.Linear`` too). The selector matmul is ruled out because ONNX
Runtime dynamic quantization then quantizes the raw coordinates (``DynamicQuantizeLinear`` on the input).
"""

from __future__ import annotations

import torch
from torch import nn

N_INPUT_COLUMNS = 3
INPUT_COLUMNS = ("latitude", "longitude", "week")


class ColumnSplit(nn.Module):
    """``(batch, 3)`` -> three ``(batch,)`` tensors (lat, lon, week), with no arithmetic on the values."""

    def forward(self, x: torch.Tensor):
        lat, lon, week = torch.split(x, 1, dim=1)
        return lat.squeeze(1), lon.squeeze(1), week.squeeze(1)


class GeoExportWrapper(nn.Module):
    """Wraps any module with ``forward(lat, lon, week, return_env=False) -> {"species_logits": ...}``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.columns = ColumnSplit()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lat, lon, week = self.columns(x)
        logits = self.model(lat, lon, week, return_env=False)["species_logits"]
        return torch.sigmoid(logits)


_CONTRACT = "forward(lat, lon, week, return_env=False) -> {'species_logits': (batch, n_species)}"


def check_geo_model(model: nn.Module) -> int:
    """Run ``model`` once on two rows; return ``n_species`` or raise SourceError naming what is wrong."""
    from edgeport.errors import SourceError

    if not isinstance(model, nn.Module):
        raise SourceError(f"The geo wrapper needs a torch.nn.Module with {_CONTRACT}, got {type(model).__name__}")
    probe = torch.tensor([[52.5, 13.4, 22.0], [-33.9, 151.2, 1.0]], dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(probe[:, 0], probe[:, 1], probe[:, 2], return_env=False)
    except (TypeError, RuntimeError, ValueError) as e:
        raise SourceError(f"The geo wrapper needs {_CONTRACT}; calling the model failed: {e}") from e
    finally:
        model.train(was_training)
    logits = out.get("species_logits") if isinstance(out, dict) else None
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != 2:
        raise SourceError(f"The geo wrapper needs {_CONTRACT}; the model returned {type(out).__name__} "
                          "without a (batch, n_species) 'species_logits' tensor")
    return int(logits.shape[1])


def wrap_geo(model: nn.Module) -> GeoExportWrapper:
    """The ``--wrapper geo`` entry: check the call contract, wrap (built-in or user's model), eval mode."""
    check_geo_model(model)
    return GeoExportWrapper(model).eval()

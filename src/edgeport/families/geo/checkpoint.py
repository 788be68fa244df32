"""Geo checkpoints: ``{"model_config": {...}, "model_state_dict": {...}}``, plain types only.

Readable with ``torch.load(weights_only=True)``; written atomically (temp file + ``os.replace``).
``build_from_config`` is the built-in factory; a user's ``--factory module:function`` is called the same way
(keyword arguments from ``model_config``).
"""

from __future__ import annotations

import inspect
import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeport.errors import SourceError
from edgeport.families.geo.labels import (
    LABELS_FILENAME,
    write_labels,
)
from edgeport.fileio import atomic_write_bytes

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "edgeport-geo"
CHECKPOINT_VERSION = 1
CONFIG_KEYS = ("n_species", "n_env_features", "model_scale", "coord_harmonics", "week_harmonics")


def build_from_config(cfg: Mapping[str, Any] | None = None, /, **kwargs: Any):
    """GeoModel from a model_config: ``build_from_config(cfg)`` or ``build_from_config(**cfg)``.

    Keys GeoModel does not take (e.g. bookkeeping a trainer added) are ignored with a debug log.
    """
    from edgeport.families.geo.model import GeoModel

    merged = {**(dict(cfg) if cfg else {}), **kwargs}
    accepted = set(inspect.signature(GeoModel).parameters)
    unknown = sorted(set(merged) - accepted)
    if unknown:
        logger.debug("model_config keys not used by GeoModel: %s", unknown)
    if "n_species" not in merged:
        raise SourceError("model_config has no 'n_species': the geo model needs the number of species")
    try:
        return GeoModel(**{k: v for k, v in merged.items() if k in accepted})
    except (TypeError, ValueError) as e:
        raise SourceError(f"model_config does not describe a valid geo model: {e}") from e


def model_config(model) -> dict[str, Any]:
    """The plain-typed config a checkpoint stores for ``model`` (GeoModel or anything with ``.config``)."""
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, Mapping):
        raise SourceError(f"{type(model).__name__} has no .config mapping: cannot write its model_config")
    return {k: _plain(v) for k, v in cfg.items()}


def save_checkpoint(path: str | os.PathLike, model, labels: Iterable[Sequence[str]] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically; with ``labels``, also write labels.txt beside it."""
    import torch

    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model_config": model_config(model),
        "model_state_dict": state,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    if labels is not None:
        rows = list(labels)
        n_species = payload["model_config"].get("n_species")
        if n_species is not None and len(rows) != n_species:
            raise SourceError(f"{len(rows)} labels given for a model with {n_species} species: they must match")
        write_labels(path.parent / LABELS_FILENAME, rows)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load the raw checkpoint dict safely (``weights_only=True``) and check its two keys."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"Checkpoint {path} does not exist: pass --checkpoint PATH")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for unsafe or broken files
        raise SourceError(
            f"Checkpoint {path} cannot be loaded safely (weights_only=True): {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}. Re-save it as plain tensors and config values"
        ) from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model_config"), dict) or not isinstance(
        ckpt.get("model_state_dict"), Mapping
    ):
        raise SourceError(
            f"Checkpoint {path} is not a geo checkpoint: expected a dict with 'model_config' and 'model_state_dict'"
        )
    return ckpt


def load_checkpoint(path: str | os.PathLike):
    """``(model, cfg)``: the built-in GeoModel with the checkpoint's weights, in eval mode."""
    ckpt = read_checkpoint(path)
    cfg = dict(ckpt["model_config"])
    model = build_from_config(cfg)
    try:
        model.load_state_dict(ckpt["model_state_dict"], strict=True)
    except RuntimeError as e:
        raise SourceError(
            f"Checkpoint {path} weights do not fit the model its model_config describes: {str(e).splitlines()[0]}"
        ) from e
    return model.eval(), cfg


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    raise SourceError(f"model_config value {value!r} ({type(value).__name__}) is not a plain type")

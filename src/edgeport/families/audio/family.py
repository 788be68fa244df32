"""The audio family's hooks for Keras sources: its config file beside the model, the config checked against
the model, and calibration / held-out validation inputs from a labelled data folder.

``sources/keras.py`` calls these through ``edgeport.families.FAMILIES["audio"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeport.errors import SourceError

log = logging.getLogger(__name__)


def config_path(model_path: Path) -> Path:
    """``X_model_config.json`` beside ``X.keras``."""
    from edgeport.families.audio.model_config import config_path_for

    return config_path_for(Path(model_path))


def load_config(handle, cfg_path: Path) -> dict:
    """The config at ``cfg_path`` as a dict, refused when it describes another model (input shape, number of
    classes); its input contract settled by the model's input shape (``contract.resolve``)."""
    from edgeport.errors import ConfigError
    from edgeport.families.audio.contract import resolve
    from edgeport.families.audio.model_config import read_model_config

    cfg = read_model_config(cfg_path)
    try:
        cfg = resolve(cfg, handle.inputs[0].shape[1:], what=handle.source_path.name, cfg_source=cfg_path.name)
    except ConfigError as e:
        raise SourceError(f"{cfg_path.name} does not match the model: {e}; pass the model's own --model-config") from None
    out = handle.outputs[0].shape
    if cfg.num_classes and len(out) == 2 and out[1] != cfg.num_classes:
        raise SourceError(
            f"{cfg_path.name} does not match the model: it lists {cfg.num_classes} classes but "
            f"{handle.source_path.name} has {out[1]} outputs; pass the model's own --model-config")
    return cfg.to_dict()


def attach_data(handle, data_path: str | Path, *, num_samples: int, validate_samples: int,
                snr_threshold: float | None = None, progress: bool = True) -> None:
    """Give an audio handle its representative dataset and held-out validation chunks from ``data_path``
    (``snr_threshold``: the near-silence level of the representative dataset; None: seed 003's 0.01)."""
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.families.audio.representative import build_audio_inputs

    cfg = AudioModelConfig.from_dict(handle.config)
    data = build_audio_inputs(data_path, cfg, input_name=handle.input_names[0], num_samples=num_samples,
                              validate_samples=validate_samples, progress=progress,
                              **({} if snr_threshold is None else {"snr_threshold": snr_threshold}))
    pool, hard = len(data.heldout), len(data.hard_cases)
    if pool + hard < validate_samples:
        log.warning("%s gives %d held-out chunks (+%d hard cases), fewer than --validate-samples %d: validation "
                    "uses all of them, and every --batch-validate seed sees the same chunks; give more or longer "
                    "files for different samples", data_path, pool, hard, validate_samples)
    handle.calibration_inputs = data.calibration_inputs
    handle.reference_inputs = data.reference_inputs
    handle.notes["calibration_extra"] = data.summary()

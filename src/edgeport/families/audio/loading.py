"""Load a trained audio model (``X.keras`` + ``X_model_config.json``) safely."""

from __future__ import annotations

from pathlib import Path

from edgeport.errors import SourceError
from edgeport.families.audio.model_config import (
    AudioModelConfig,
    config_path_for,
    read_model_config,
)


def load_keras_model(path: Path | str, *, safe_mode: bool = True):
    """``keras.saving.load_model`` with edgeport's layers registered; safe mode unless the caller trusts it."""
    import keras

    import edgeport.families.audio.layers
    import edgeport.families.audio.seed_layers  # noqa: F401 - and the seed system's layer classes

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"Model file not found: {path}")
    try:
        return keras.saving.load_model(str(path), safe_mode=safe_mode, compile=False)
    except (ValueError, TypeError, OSError) as e:
        raise SourceError(f"Cannot load {path} as a Keras model with safe_mode={safe_mode}: {e}. A .keras made by "
                          "another tool may hold its own layer classes; export its .tflite instead") from e


def load_trained_model(path: Path | str, config_path: Path | str | None = None, *, safe_mode: bool = True):
    """(keras model, AudioModelConfig) for ``X.keras``; the config defaults to ``X_model_config.json``."""
    path = Path(path)
    cfg_path = Path(config_path) if config_path else config_path_for(path)
    cfg: AudioModelConfig = read_model_config(cfg_path)
    model = load_keras_model(path, safe_mode=safe_mode)
    from edgeport.errors import ConfigError
    from edgeport.families.audio.contract import resolve

    try:
        cfg = resolve(cfg, tuple(model.input_shape)[1:], what=str(path), cfg_source=str(cfg_path))
    except ConfigError as e:
        raise SourceError(str(e)) from None
    return model, cfg

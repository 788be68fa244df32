"""Keras 3 sources: a ``.keras`` file (safe mode unless ``--trust-source``) with its ``X_model_config.json``.

A model trained by ``edgeport train`` (or the seed system, same config keys) is an ``audio`` family model:
its config is checked against the model (input shape, number of classes), its labels are ``X_labels.txt``,
and ``attach_audio_data`` gives it calibration and validation inputs from a labelled data folder. A
``.keras`` without a config is a plain Keras model (validated on seeded inputs or ``--reference-inputs``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeport.errors import SourceError
from edgeport.sources.base import ModelHandle, TensorSpec

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras",)
AUDIO_FAMILY = "audio"


def load_keras(source, *, model_config: str | Path | None = None, trust_source: bool = False, name: str | None = None,
               output_names=(), **_ignored) -> ModelHandle:
    """Load ``X.keras`` (+ ``X_model_config.json`` when present or given) into a ModelHandle."""
    from edgeport.families.audio.model_config import config_path_for, read_model_config
    from edgeport.runtimes.keras import KerasRunner
    from edgeport.sources.base import check_model_file

    path = Path(source)
    check_model_file(path, "Keras model file", zip_member="config.json")
    cfg_path = Path(model_config) if model_config else config_path_for(path)
    if model_config and not cfg_path.is_file():
        raise SourceError(f"--model-config file not found: {cfg_path}")
    runner = KerasRunner.open(path, trust_source=trust_source)  # one clear line for a Lambda / foreign layer
    model = runner.model
    if len(runner.inputs) != 1:
        raise SourceError(f"{path.name} has {len(runner.inputs)} inputs; edgeport converts single-input Keras models")
    inp = runner.inputs[0]
    outs = tuple(TensorSpec(n, (None, *s), "float32") for n, s in runner._output_row_shapes().items())
    if output_names:
        if len(output_names) != len(outs):
            raise SourceError(f"--output-names gives {len(output_names)} names; {path.name} has {len(outs)} outputs")
        outs = tuple(TensorSpec(n, t.shape, t.dtype) for n, t in zip(output_names, outs, strict=True))
    handle = ModelHandle(
        name=name or path.stem, framework="keras", model=model,
        inputs=(TensorSpec(inp.name, inp.shape, "float32"),), outputs=outs, source_path=path,
    )
    if cfg_path.is_file():
        cfg = check_config_matches(read_model_config(cfg_path), handle, cfg_path)
        handle.family = AUDIO_FAMILY
        handle.config = cfg.to_dict()
        handle.notes["model_config_file"] = str(cfg_path)
        labels = path.with_name(f"{path.stem}_labels.txt")
        handle.labels_file = labels if labels.is_file() else None
    else:
        log.warning("%s has no %s: exporting it as a plain Keras model (no audio calibration data); pass "
                    "--model-config for an audio model", path.name, cfg_path.name)
    return handle


def check_config_matches(cfg, handle: ModelHandle, cfg_path: Path):
    """Refuse a model config that describes another model (input shape, number of classes); returns the config
    with its input contract settled by the model's input shape (``contract.resolve``)."""
    from edgeport.errors import ConfigError
    from edgeport.families.audio.contract import resolve

    try:
        cfg = resolve(cfg, handle.inputs[0].shape[1:], what=handle.source_path.name, cfg_source=cfg_path.name)
    except ConfigError as e:
        raise SourceError(f"{cfg_path.name} does not match the model: {e}; pass the model's own --model-config") from None
    out = handle.outputs[0].shape
    if cfg.num_classes and len(out) == 2 and out[1] != cfg.num_classes:
        raise SourceError(
            f"{cfg_path.name} does not match the model: it lists {cfg.num_classes} classes but "
            f"{handle.source_path.name} has {out[1]} outputs; pass the model's own --model-config")
    return cfg


def audio_config(handle: ModelHandle):
    """The handle's AudioModelConfig (``None`` for a plain Keras model)."""
    if handle.family != AUDIO_FAMILY:
        return None
    from edgeport.families.audio.model_config import AudioModelConfig

    return AudioModelConfig.from_dict(handle.config)


#: Defaults of ``edgeport export X.keras``: representative dataset rows (--num-samples) and held-out
#: validation chunks (--validate-samples), as in the seed system.
NUM_SAMPLES = 1024
VALIDATE_SAMPLES = 256


def attach_audio_data(handle: ModelHandle, data_path: str | Path | None, *, num_samples: int = NUM_SAMPLES,
                      validate_samples: int = VALIDATE_SAMPLES, snr_threshold: float | None = None,
                      progress: bool = True) -> None:
    """Give an audio handle its representative dataset and held-out validation chunks from ``data_path``
    (``snr_threshold``: the near-silence level of the representative dataset, default seed 003's)."""
    cfg = audio_config(handle)
    if cfg is None or data_path is None:
        return
    from edgeport.families.audio.representative import build_audio_inputs

    level = {} if snr_threshold is None else {"snr_threshold": snr_threshold}
    data = build_audio_inputs(data_path, cfg, input_name=handle.input_names[0], num_samples=num_samples,
                              validate_samples=validate_samples, progress=progress, **level)
    pool, hard = len(data.heldout), len(data.hard_cases)
    if pool + hard < validate_samples:
        log.warning("%s gives %d held-out chunks (+%d hard cases), fewer than --validate-samples %d: validation "
                    "uses all of them, and every --batch-validate seed sees the same chunks; give more or longer "
                    "files for different samples", data_path, pool, hard, validate_samples)
    handle.calibration_inputs = data.calibration_inputs
    handle.reference_inputs = data.reference_inputs
    handle.notes["calibration_extra"] = data.summary()

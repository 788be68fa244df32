"""Keras 3 sources: a ``.keras`` file (safe mode unless ``--trust-source``) with its family's config file.

A model with the config file of a registered Keras family (``edgeport train``'s and the seed system's
``X_model_config.json``: the ``audio`` family) belongs to it: the family's ``load_config`` hook checks the
config against the model (input shape, number of classes), its labels are ``X_labels.txt``, and
``attach_audio_data`` gives it calibration and validation inputs from a data folder (the family's
``attach_data`` hook). A ``.keras`` without a config is a plain Keras model (validated on seeded inputs or
``--reference-inputs``). This module names no family's files or fields itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeport.errors import SourceError
from edgeport.sources.base import ModelHandle, TensorSpec

log = logging.getLogger(__name__)



def _keras_family(cfg_path_given: Path | None, model_path: Path):
    """The Keras family whose config file the model has (or the one given with --model-config), if any."""
    from edgeport.families import families_for

    for fam in families_for("keras"):
        path = cfg_path_given or fam.config_path(model_path)
        if path.is_file():
            return fam, path
    return None, cfg_path_given


def load_keras(source, *, model_config: str | Path | None = None, trust_source: bool = False, name: str | None = None,
               output_names=(), **_ignored) -> ModelHandle:
    """Load ``X.keras`` (+ its family's ``X_model_config.json`` when present or given) into a ModelHandle."""
    from edgeport.runtimes.keras import KerasRunner
    from edgeport.sources.base import check_model_file

    path = Path(source)
    check_model_file(path, "Keras model file", zip_member="config.json")
    if model_config and not Path(model_config).is_file():
        raise SourceError(f"--model-config file not found: {model_config}")
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
    family, cfg_path = _keras_family(Path(model_config) if model_config else None, path)
    if family is not None:
        handle.config = family.load_config(handle, cfg_path)
        handle.family = family.name
        handle.notes["model_config_file"] = str(cfg_path)
        labels = path.with_name(f"{path.stem}_labels.txt")
        handle.labels_file = labels if labels.is_file() else None
    else:
        log.warning("%s has no %s_model_config.json: exporting it as a plain Keras model (no audio calibration "
                    "data); pass --model-config for an audio model", path.name, path.stem)
    return handle


#: Defaults of ``edgeport export X.keras``: representative dataset rows (--num-samples) and held-out
#: validation chunks (--validate-samples), as in the seed system.
NUM_SAMPLES = 1024
VALIDATE_SAMPLES = 256


def attach_audio_data(handle: ModelHandle, data_path: str | Path | None, *, num_samples: int = NUM_SAMPLES,
                      validate_samples: int = VALIDATE_SAMPLES, snr_threshold: float | None = None,
                      progress: bool = True) -> None:
    """Give a family handle its representative dataset and held-out validation chunks from ``data_path``
    (the family's ``attach_data`` hook; ``snr_threshold``: the near-silence level of the representative
    dataset, default seed 003's); nothing for a plain model or no folder."""
    from edgeport.families import family_of

    family = family_of(handle)
    if family is None or data_path is None or not family.has("attach_data"):
        return
    family.attach_data(handle, data_path, num_samples=num_samples, validate_samples=validate_samples,
                       snr_threshold=snr_threshold, progress=progress)

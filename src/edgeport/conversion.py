"""The seed system's conversion API (``birdnet_stm32.conversion.quantize``), on edgeport's Keras TFLite route.

``representative_data_gen(file_paths, cfg, num_samples=100, snr_threshold=0.01)`` yields ``[x]``, one model
input with its batch axis per file (the centre chunk, near-silent ones skipped), as the TFLite converter's
``representative_dataset`` takes it. ``convert_to_tflite(model, rep_data_gen, output_path, quantization="ptq",
per_tensor=False)`` converts a Keras model through ``edgeport.export``'s pipeline: the ``tflite_int8_full``
(``ptq``) or ``tflite_int8`` (``dynamic``) route, float32 I/O, builtin ops only, the artifact run in LiteRT and
judged by the comparator against the Keras model under the format's gate. It returns the flatbuffer's bytes;
a conversion that misses its gate raises ``ValidationError`` and writes nothing under ``output_path`` (the
artifact is kept beside it as ``<stem>.failed.tflite``). docs/python-api.md.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, DataError, ValidationError

log = logging.getLogger(__name__)

#: ``quantization`` -> the edgeport format it converts to
QUANTIZATION_FORMATS = {"ptq": "tflite_int8_full", "dynamic": "tflite_int8"}


def audio_model_config(cfg):
    """An ``AudioModelConfig`` from a config dict (the seed's training config keys, or an edgeport
    ``X_model_config.json``), a path to such a JSON file, or an ``AudioModelConfig``."""
    from edgeport.families.audio.model_config import AudioModelConfig, read_model_config

    if isinstance(cfg, AudioModelConfig):
        return cfg
    if isinstance(cfg, (str, Path)):
        return read_model_config(Path(cfg))
    if isinstance(cfg, dict):
        return AudioModelConfig.from_dict(cfg)
    raise ConfigError(f"cfg must be a model config dict, a *_model_config.json path or an AudioModelConfig, got "
                      f"{type(cfg).__name__}")


def centre_input(path: str | Path, cfg, snr_threshold: float = 0.01) -> np.ndarray | None:
    """The model input (no batch axis) of ``path``'s centre chunk, as ``edgeport export --data-path-train``
    calibrates on it; ``None`` when that chunk is near-silent (below ``snr_threshold``; 0 keeps it)."""
    from edgeport.audio.chunking import chunk_signal
    from edgeport.families.audio.contract import features, load_audio
    from edgeport.families.audio.representative import CHUNK_OVERLAP, is_near_silent

    cfg = audio_model_config(cfg)
    chunks = chunk_signal(load_audio(path, cfg), cfg.chunk_samples, CHUNK_OVERLAP)
    chunk = chunks[len(chunks) // 2]
    x = features(chunk, cfg)
    return None if is_near_silent(x, chunk, cfg, snr_threshold) else x


def representative_data_gen(file_paths: Sequence[str | Path], cfg, num_samples: int = 100,
                            snr_threshold: float = 0.01) -> Iterator[list[np.ndarray]]:
    """Yield ``[x]``, ``x`` of shape ``(1, *model input)`` float32, for up to ``num_samples`` files drawn from
    ``file_paths`` (``random.sample``): each file's centre chunk through the config's frontend and input
    contract, chunks below ``snr_threshold`` skipped (RMS of a raw input, mean |x| of a spectrogram input; 0
    disables the filter), unreadable files skipped with a warning.

    ``cfg``: the training config dict (``sample_rate``, ``num_mels``, ``spec_width``, ``chunk_duration``,
    ``fft_length``, ``audio_frontend``, ``mag_scale``), an ``X_model_config.json`` path or an ``AudioModelConfig``.
    Raises ``DataError`` for an empty ``file_paths``, ``ConfigError`` for ``num_samples < 1`` or a negative
    ``snr_threshold``.
    """
    paths = list(file_paths)
    if not paths:
        raise DataError("No audio files found for representative dataset generation: give file_paths")
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    if not snr_threshold >= 0:
        raise ConfigError(f"snr_threshold must be >= 0 (0 disables the filter), got {snr_threshold}")
    model_cfg = audio_model_config(cfg)
    for path in random.sample(paths, min(num_samples, len(paths))):
        try:
            x = centre_input(path, model_cfg, snr_threshold)
        except Exception as e:  # noqa: BLE001 - a corrupt file is skipped and named (SPEC §7)
            log.warning("representative dataset: skipped unreadable %s (%s)", path, type(e).__name__)
            continue
        if x is not None:
            yield [x[None].astype(np.float32)]


def convert_to_tflite(model, rep_data_gen, output_path: str | Path, quantization: str = "ptq",
                      per_tensor: bool = False, *, validation_data=None, gates: dict | None = None) -> bytes:
    """Convert a Keras model to TFLite with float32 I/O: ``ptq`` full INT8 internals calibrated on
    ``rep_data_gen`` (edgeport's ``tflite_int8_full``), ``dynamic`` INT8 weights (``tflite_int8``);
    ``per_tensor`` quantizes weights per tensor instead of per channel. Returns the flatbuffer's bytes,
    written at ``output_path`` only once the artifact passed its gate.

    ``model``: a ``keras.Model`` or a ``.keras`` path. ``rep_data_gen``: a callable returning an iterable of
    ``[input]`` (``representative_data_gen``'s items), or that iterable; needed for ``ptq``, and the rows the
    artifact is judged on unless ``validation_data`` (same form) gives held-out ones. ``gates``: overrides of
    the format's gate (``{metric: value}``, e.g. ``{"min_cosine": 0.97}``).

    Raises ``ConfigError`` for a bad ``quantization`` or missing calibration data, ``ConversionError`` when the
    converter fails, ``ValidationError`` when the artifact misses its gate (kept as ``<stem>.failed.tflite``).
    """
    from edgeport.export import ExportConfig, export_handle, export_options
    from edgeport.fileio import OutputPlan, move_into_place

    if quantization not in QUANTIZATION_FORMATS:
        raise ConfigError(f"Invalid quantization mode: '{quantization}'. Use 'ptq' or 'dynamic'.")
    fmt = QUANTIZATION_FORMATS[quantization]
    output_path = Path(output_path)
    failed_path = output_path.with_name(f"{output_path.stem}.failed{output_path.suffix or '.tflite'}")
    handle = keras_model_handle(model, name=output_path.stem)
    calibration = _rows(rep_data_gen, handle, "rep_data_gen") if rep_data_gen is not None else None
    if calibration is None and quantization == "ptq":
        raise ConfigError("quantization='ptq' needs rep_data_gen (calibration data); use quantization='dynamic' "
                          "without it")
    held_out = _rows(validation_data, handle, "validation_data") if validation_data is not None else calibration
    if held_out is not None:
        handle.reference_inputs = _row_reader(handle, held_out)
    if calibration is not None:
        handle.calibration_inputs = _row_reader(handle, calibration)
    plan = OutputPlan(force=True)
    plan.add(output_path)
    plan.add(failed_path)
    plan.check()
    with plan:
        work = plan.work_dir(output_path.parent, "edgeport-convert-")
        rows = len(next(iter(held_out.values()))) if held_out is not None else 200
        n_cal = len(next(iter(calibration.values()))) if calibration is not None else 1
        result = export_handle(handle, ExportConfig(
            formats=(fmt,), outdir=work, force=True, reference_rows=max(2, rows),
            gate_overrides={fmt: dict(gates)} if gates else {},
            options=export_options(per_tensor=per_tensor, calibration_samples=n_cal),
            command_line="edgeport.convert_to_tflite"))
        art = result.artifacts[0]
        if art.status == "error":
            from edgeport.errors import ConversionError

            raise ConversionError(f"{fmt}: {art.error}")
        data = (work / art.path.name).read_bytes()
        final = output_path if art.passed else failed_path
        move_into_place(work / art.path.name, plan.staged(final))
        plan.commit(prune=True)  # a passing conversion removes an earlier .failed file, a failing one the artifact
    if not art.passed:
        raise ValidationError(f"{fmt} missed its gate ({'; '.join(art.comparison.failures)}); nothing written at "
                              f"{output_path}, the artifact is kept as {failed_path}")
    return data


def keras_model_handle(model, *, name: str = "model"):
    """A ``ModelHandle`` for an in-memory ``keras.Model`` (or a ``.keras`` path: ``edgeport.sources``)."""
    from edgeport.runtimes.keras import KerasRunner
    from edgeport.sources.base import ModelHandle, TensorSpec

    if isinstance(model, (str, Path)):
        from edgeport.sources import load_source

        return load_source(model, name=name)
    runner = KerasRunner(model)
    if len(runner.inputs) != 1:
        raise ConfigError(f"the Keras model has {len(runner.inputs)} inputs; convert_to_tflite takes single-input "
                          "models")
    spec = runner.inputs[0]
    outs = tuple(TensorSpec(n, (None, *s), "float32") for n, s in runner._output_row_shapes().items())
    return ModelHandle(name=name, framework="keras", model=model, inputs=(TensorSpec(spec.name, spec.shape, "float32"),),
                       outputs=outs)


def _rows(data, handle, what: str) -> dict[str, np.ndarray]:
    """Every ``[x]`` (or ``x``, or ``{name: x}``) of ``data`` (a callable returning an iterable, or the
    iterable), stacked along the batch axis into ``{input name: rows}``."""
    items: Iterable = data() if callable(data) else data
    spec = handle.inputs[0]
    rows = []
    for item in items:
        x = item.get(spec.name, next(iter(item.values()))) if isinstance(item, dict) else (
            item[0] if isinstance(item, (list, tuple)) else item)
        x = np.asarray(x, np.float32)
        if x.ndim == len(spec.shape) - 1:
            x = x[None]
        if tuple(x.shape[1:]) != tuple(d or x.shape[i + 1] for i, d in enumerate(spec.shape[1:])):
            raise ConfigError(f"{what} gives inputs of shape {tuple(x.shape)}; the model takes "
                              f"{tuple(spec.shape)}: build them with the model's config")
        rows.append(x)
    if not rows:
        raise DataError(f"{what} gave no inputs (every file near-silent or unreadable?): lower snr_threshold or "
                        "give other files")
    return {spec.name: np.concatenate(rows)}


def _row_reader(handle, rows: dict[str, np.ndarray]) -> Callable[[int, int], dict[str, np.ndarray]]:
    def read(n: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
        return {k: v[: int(n)] for k, v in rows.items()}

    return read

"""What the export engine must know about the audio DS-CNN's graph: which Keras layers (SPEC §5 names) stay
float in each quantized format, which op types static QDQ quantization touches, and the NPU check.

The exporters know no family: they ask ``edgeport.families.FAMILIES`` for the handle's family, whose hooks
are the functions below. A new family writes its own rules module and registers it; nothing in
``exporters/`` changes.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Keras layers kept float in the quantized ONNX artifacts when the model has them: the audio frontend (its
#: input is a linear STFT magnitude or a waveform, whose range INT8 cannot hold; the per-sample normalisation
#: divides by an input-derived value) and the stem conv that reads the frontend's output. Measured on a
#: trained DS-CNN (docs/dev/onnx-keras.md): dynamic INT8 top-1 agreement 0.92 -> 0.99 with the frontend
#: float, static MinMax 0.97 -> 0.98 with the stem float too.
ONNX_FLOAT_LAYERS = ("mel_mixer", "frontend_normalize", "mag_pwl", "mag_pcen", "mag_db", "raw_reshape",
                     "raw_filterbank", "raw_bn", "raw_relu6", "raw_pool", "raw_crop", "raw_to_bins_first",
                     "stem_conv", "stem_bn", "stem_relu6")

#: Layers whose ops stay float in the full-integer TFLite artifact: the per-sample normalisation divides by
#: an input-derived value (zero on quiet INT8 input) ...
NORMALIZE_LAYERS = ("frontend_normalize",)
#: ... and ``--float-frontend`` keeps the learned frontend (mel mixer / raw filterbank, magnitude scaling).
FRONTEND_LAYERS = ("mel_mixer", "frontend_normalize", "raw_reshape", "raw_filterbank", "raw_bn", "raw_relu6",
                   "raw_pool", "raw_crop", "raw_to_bins_first", "mag_pwl", "mag_pcen", "mag_db")

#: Op types the static QDQ quantizer touches in an audio model: the compute ops plus the element-wise and
#: pooling ops between them, so activations stay INT8 from one conv to the next; never Sigmoid (SE gates and
#: the output probabilities: SPEC §3), Div / ReduceMax (the normalisation) or Softmax. Measured: static
#: MinMax top-1 0.983 -> 0.991 (hybrid), 0.981 -> 1.0 (log_mel) against Conv/MatMul only.
STATIC_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Clip", "Relu",
                   "GlobalAveragePool", "AveragePool", "MaxPool", "Reshape", "Squeeze", "Unsqueeze",
                   "Transpose", "Concat")

#: every layer name this module knows (tests check that no exporter module names one)
LAYER_NAMES = tuple(dict.fromkeys([*ONNX_FLOAT_LAYERS, *NORMALIZE_LAYERS, *FRONTEND_LAYERS]))


def layer_names(handle) -> set[str]:
    """Names of the Keras layers of the handle's model."""
    return {layer.name for layer in getattr(handle.model, "layers", [])}


def float_layers(handle, *, backend: str, float_frontend: bool = False, quantize_normalize: bool = False,
                 override: Iterable[str] | None = None) -> tuple[str, ...]:
    """The layers of the handle's model kept float in a quantized ``backend`` ("onnx" | "tflite") artifact.

    ONNX keeps the frontend and the stem; full-integer TFLite keeps the normalisation, or the whole frontend
    with ``float_frontend``, and a seed-system hybrid frontend (``seed_layers.int8_float_layers``);
    ``quantize_normalize`` (a measurement of the trap) quantizes the normalisation too. ``override``
    replaces the default list (e.g. ``()`` to quantize every layer)."""
    if override is not None:
        want = tuple(override)
    elif backend == "onnx":
        want = ONNX_FLOAT_LAYERS
    else:
        want = FRONTEND_LAYERS if float_frontend else NORMALIZE_LAYERS
        if quantize_normalize and not float_frontend:
            want = tuple(n for n in want if n not in NORMALIZE_LAYERS)
    present = layer_names(handle)
    kept = tuple(n for n in want if n in present)
    if backend == "tflite" and override is None:
        from edgeport.families.audio.seed_layers import int8_float_layers

        kept += tuple(n for n in int8_float_layers(handle.model) if n not in kept)
    return kept


def static_op_types(handle) -> tuple[str, ...] | None:
    """Op types ``onnx_int8_static`` quantizes in an audio model (``None``: the exporter's default)."""
    return STATIC_OP_TYPES if layer_names(handle) & set(LAYER_NAMES) else None


def npu_problems(handle) -> list[str]:
    """SPEC §4 problems of the handle's model config for an NPU (raw input size, ...)."""
    if not handle.config:
        return []
    from edgeport.families.audio.frontends import npu_problems as problems
    from edgeport.families.audio.model_config import AudioModelConfig

    return problems(AudioModelConfig.from_dict(handle.config))

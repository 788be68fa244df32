"""A TFLite file (or a SavedModel folder) as a reference or artifact: its runner and a handle from its specs.

No format is exported from a TFLite source; ``edgeport validate`` uses the handle for the input specs of
seeded random reference inputs and runs the file in the standalone LiteRT interpreter (no Flex delegate).
Quantized inputs (an INT8 input tensor with a scale) are fed real values, quantized by the runner.
"""

from __future__ import annotations

from pathlib import Path

from edgeport.errors import ConfigError, SourceError
from edgeport.sources.base import ModelHandle, TensorSpec, check_model_file
from edgeport.sources.inputs import DEFAULT_DIM, Ranges, attach_random_inputs

SUFFIX = ".tflite"
#: the flatbuffer file identifier of a TFLite model (bytes 4..8)
IDENTIFIER = b"TFL3"


def load_tflite(source, *, name: str | None = None, input_shapes: tuple[TensorSpec, ...] = (),
                input_ranges: Ranges | None = None, default_dim: int = DEFAULT_DIM, factory=None, wrapper=None,
                **_ignored) -> ModelHandle:
    """``X.tflite`` -> a handle (framework ``tflite``) whose model is its ``LiteRTRunner``."""
    from edgeport.runtimes.litert import LiteRTRunner

    if factory is not None or wrapper is not None:
        raise ConfigError(f"{'--factory' if factory is not None else '--wrapper'} applies to PyTorch checkpoints, "
                          "not to a TFLite file")
    path = Path(source)
    check_model_file(path, "TFLite file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] != IDENTIFIER:
        raise SourceError(f"{path} is not a TFLite model (no {IDENTIFIER.decode()} flatbuffer identifier); give a "
                          ".tflite written by a TFLite converter")
    return runner_handle(LiteRTRunner.open(path), path, framework="tflite", name=name, input_shapes=input_shapes,
                         input_ranges=input_ranges, default_dim=default_dim)


def load_saved_model(source, **kwargs) -> ModelHandle:
    """A SavedModel folder (``saved_model.pb`` and its ``serving_default`` signature) -> a handle."""
    from edgeport.runtimes.tf import SavedModelRunner

    path = Path(source)
    return runner_handle(SavedModelRunner.open(path), path, framework="tf", **kwargs)


def runner_handle(runner, path: Path, *, framework: str, name: str | None = None,
                  input_shapes: tuple[TensorSpec, ...] = (), input_ranges: Ranges | None = None,
                  default_dim: int = DEFAULT_DIM) -> ModelHandle:
    """A handle whose ``model`` is a loaded runner: inputs and outputs as the runtime reports them."""
    in_dtypes = runner.io_dtypes()["inputs"]
    quantized = {k for k, d in getattr(runner, "_in", {}).items() if d.get("quantization", (0.0, 0))[0]}
    inputs = tuple(TensorSpec(t.name, t.shape, "float32" if t.name in quantized else in_dtypes.get(t.name, t.dtype))
                   for t in runner.inputs)
    given = {t.name: t for t in input_shapes}
    unknown = sorted(set(given) - {t.name for t in inputs})
    if unknown:
        raise ConfigError(f"--input-shape names {unknown}; the model's inputs are {[t.name for t in inputs]}")
    inputs = tuple(TensorSpec(t.name, given[t.name].shape, t.dtype) if t.name in given else t for t in inputs)
    rows = runner._output_row_shapes()
    outputs = tuple(TensorSpec(n, (None, *rows.get(n, ())), "float32") for n in runner.output_names)
    handle = ModelHandle(name=name or Path(path).stem, framework=framework, model=runner, inputs=inputs,
                         outputs=outputs, source_path=Path(path), notes={"fixed_batch": runner.fixed_batch})
    attach_random_inputs(handle, input_ranges, default_dim)
    return handle

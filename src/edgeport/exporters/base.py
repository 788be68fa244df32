"""Format specifications and the options every exporter takes.

Each format is one frozen ``FormatSpec`` in the ``FORMATS`` registry (see ``exporters/__init__.py``), carrying
its default ``Gate``; adding a format touches one exporter module and one registry entry. Every exporter
module exposes

    export(handle: ModelHandle, *, fmt: FormatSpec, path: Path, options: ExportOptions) -> dict

which writes the artifact at ``path`` (a file, or a directory for SavedModel) and returns notes for the
manifest (route used, ops kept in float, ...). It raises ``ConversionError`` with one clear line when the
converter fails.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeport.errors import ConfigError, MissingDependencyError
from edgeport.validation.gates import Gate

#: devices of the reference model (``--device``; the CLI's ``choices=`` and ``ExportConfig`` read it)
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class FormatSpec:
    name: str
    backend: str  # exporter module: "onnx" | "tflite" | "saved_model"
    precision: str  # "fp32" | "fp16" | "int8_dynamic" | "int8_static" | "int8_full"
    suffix: str  # added to the model name: "", "_fp16", "_int8", ...
    extension: str  # ".onnx", ".tflite", or "" for a directory
    runtime: str  # runner name in RUNTIMES
    frameworks: frozenset[str]  # source frameworks it applies to
    gate: Gate  # the default gate (SPEC §2); loosened only with a measured reason in docs/validation.md
    needs_calibration: bool = False
    description: str = ""
    fixed_name: str | None = None  # a directory artifact with a set name ("saved_model")
    fp16_io_gate: Gate | None = None  # the gate with --fp16-io, when it differs

    def __post_init__(self) -> None:
        if not isinstance(self.gate, Gate):
            raise ConfigError(f"format '{self.name}' needs a Gate, got {type(self.gate).__name__}")

    def gate_for(self, *, tol: float = 1e-4, fp16_io: bool = False,
                 overrides: dict[str, dict[str, float]] | None = None) -> Gate:
        """The gate in force: the default (or the --fp16-io one) after ``--tol`` and ``--gate`` overrides."""
        gate = (self.fp16_io_gate if fp16_io and self.fp16_io_gate is not None else self.gate).with_tol(tol)
        if overrides and self.name in overrides:
            gate = gate.override(**overrides[self.name])
        return gate

    def artifact_name(self, model_name: str) -> str:
        return self.fixed_name or f"{model_name}{self.suffix}{self.extension}"

    def failed_name(self, model_name: str) -> str:
        if self.fixed_name:
            return f"{self.fixed_name}.failed"
        return f"{model_name}{self.suffix}.failed{self.extension}"


#: ``ExportOptions`` fields with a fixed set of values
CHOICES: dict[str, tuple[str, ...]] = {
    "tflite_route": ("auto", "savedmodel", "litert-torch"),
    "calibration_method": ("minmax", "percentile", "entropy"),
    "int8_route": ("converter", "ai-edge-quantizer"),
    "torch_onnx_route": ("dynamo", "torchscript"),
}
#: static INT8 calibration methods
CALIBRATION_METHODS = CHOICES["calibration_method"]


@dataclass(frozen=True)
class ExportOptions:
    """Options of the exporters (keyword-only, every field checked on construction)."""

    tol: float = 1e-4
    fp16_io: bool = False
    device: str = "cpu"
    opset: int = 18
    per_tensor: bool = False
    calibration_samples: int = 256
    calibration_method: str = "minmax"
    tflite_batch: int = 1
    tflite_route: str = "auto"  # PyTorch -> TFLite: auto | savedmodel (dynamic batch) | litert-torch (fixed batch)
    work_dir: Path | None = None
    #: PyTorch -> ONNX: the dynamo exporter, or the TorchScript one (models dynamo cannot trace)
    torch_onnx_route: str = "dynamo"
    #: Keras full-INT8 TFLite: the TFLite converter's own PTQ, or ai-edge-quantizer on the float flatbuffer
    int8_route: str = "converter"
    #: full-INT8 TFLite: keep the family's learned frontend float too (``--float-frontend``)
    float_frontend: bool = False
    #: full-INT8 TFLite: refuse an artifact the family's NPU check finds problems in (``--no-npu-check``)
    npu_check: bool = True
    #: measurement only (benchmarks): quantize the family's normalisation layer too
    quantize_normalize: bool = False
    #: quantized ONNX: layers kept float instead of the family's default (``()`` quantizes every layer)
    onnx_float_layers: tuple[str, ...] | None = None
    #: onnx_int8_static: op types quantized instead of the family's / exporter's default (no fallback)
    static_op_types: tuple[str, ...] | None = None
    #: onnx_int8_static: calibration rows ONNX Runtime holds at once (the largest divisor of the row count)
    calibration_stride: int = 32
    #: layers kept float on top of the defaults, without the ops in front of them (the auto-fallback's choice,
    #: exporters/fallback.py): Keras layer names, torch module paths or ONNX node names
    fallback_float: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tol > 0:
            raise ConfigError(f"--tol must be > 0, got {self.tol}")
        if self.opset < 17:
            raise ConfigError(f"opset must be >= 17, got {self.opset}")
        if self.tflite_batch < 1:
            raise ConfigError(f"TFLite batch must be >= 1, got {self.tflite_batch}")
        if self.calibration_samples < 1:
            raise ConfigError(f"calibration samples must be >= 1, got {self.calibration_samples}")
        if self.calibration_stride < 1:
            raise ConfigError(f"calibration stride must be >= 1, got {self.calibration_stride}")
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"unknown {name.replace('_', ' ')} '{value}'; use {', '.join(allowed)}")
        for name in ("onnx_float_layers", "static_op_types", "fallback_float"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{name} must be a list of names, got {value!r}")
                object.__setattr__(self, name, tuple(value))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["work_dir"] = str(self.work_dir) if self.work_dir else None
        return d


def require(module: str, package: str, purpose: str, extra: str):
    """``importlib.import_module(module)``, or ``MissingDependencyError`` naming the pip package and extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, purpose, extra) from None


def error_line(e: BaseException) -> str:
    """The first line of an exception's message, at most 300 characters (for one-line ConversionErrors)."""
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else "")[:300]

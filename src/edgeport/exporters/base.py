"""Format specifications and the options every exporter takes.

Each format is one frozen ``FormatSpec`` in the ``FORMATS`` registry (see ``exporters/__init__.py``);
adding a format touches one exporter module and one registry entry. Every exporter module exposes

    export(handle: ModelHandle, *, fmt: FormatSpec, path: Path, options: ExportOptions) -> dict

which writes the artifact at ``path`` (a file, or a directory for SavedModel) and returns notes for the
manifest (route used, ops kept in float, ...). It raises ``ConversionError`` with one clear line when the
converter fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeport.errors import ConfigError


@dataclass(frozen=True)
class FormatSpec:
    name: str
    backend: str  # exporter module: "onnx" | "tflite" | "saved_model"
    precision: str  # "fp32" | "fp16" | "int8_dynamic" | "int8_static" | "int8_full"
    suffix: str  # added to the model name: "", "_fp16", "_int8", ...
    extension: str  # ".onnx", ".tflite", or "" for a directory
    runtime: str  # runner name in RUNTIMES
    frameworks: frozenset[str]  # source frameworks it applies to
    needs_calibration: bool = False
    description: str = ""
    fixed_name: str | None = None  # a directory artifact with a set name ("saved_model")

    def artifact_name(self, model_name: str) -> str:
        return self.fixed_name or f"{model_name}{self.suffix}{self.extension}"

    def failed_name(self, model_name: str) -> str:
        if self.fixed_name:
            return f"{self.fixed_name}.failed"
        return f"{model_name}{self.suffix}.failed{self.extension}"


@dataclass(frozen=True)
class ExportOptions:
    """Options shared by every exporter (keyword-only, checked on construction)."""

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
    #: layers kept float on top of the defaults, without the ops in front of them (the auto-fallback's choice,
    #: exporters/fallback.py): Keras layer names, torch module paths or ONNX node names
    fallback_float: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tol > 0:
            raise ConfigError(f"--tol must be > 0, got {self.tol}")
        if self.opset < 17:
            raise ConfigError(f"opset must be >= 17, got {self.opset}")
        if self.tflite_batch < 1:
            raise ConfigError(f"TFLite batch must be >= 1, got {self.tflite_batch}")
        if self.tflite_route not in ("auto", "savedmodel", "litert-torch"):
            raise ConfigError(f"unknown TFLite route '{self.tflite_route}'; use auto, savedmodel or litert-torch")
        if self.calibration_method not in ("minmax", "percentile", "entropy"):
            raise ConfigError(
                f"unknown calibration method '{self.calibration_method}'; use minmax, percentile or entropy"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["work_dir"] = str(self.work_dir) if self.work_dir else None
        return d

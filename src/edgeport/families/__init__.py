"""Reference model families: built in, constructible from a config, used by the demo and the tests.

A family is data plus hooks named as ``"module:attribute"`` strings, so that nothing heavy is imported
until a family is used. Adding a family is one registry entry here and its package under ``families/``;
sources and exporters ask the family through the methods below and name no family themselves.

Hooks (every one optional; a family without one gets the default said beside it):

- ``build(cfg)``, ``wrap(model)``: a torch family's model from a checkpoint config, and its export wrapper
- ``reference_inputs(n, seed)``, ``calibration_inputs(n, seed)``: seeded rows (torch families)
- ``config_path(model_path)``, ``load_config(handle, path) -> dict``: a Keras family's config file beside
  the model, read and checked against the model
- ``attach_data(handle, data_path, num_samples=, validate_samples=, progress=)``: calibration and held-out
  reference inputs from a data folder
- ``float_layers(handle, backend=, float_frontend=, quantize_normalize=, override=)``: layers kept float in
  a quantized artifact (default: none beyond ``handle.keep_float``)
- ``static_op_types(handle)``: op types static INT8 quantizes (default ``None``: the exporter's own)
- ``npu_problems(handle)``: NPU readiness problems of the model (default: none)
- ``export_folder(source, **options)``: a family that writes its own deliverables folder
  (``edgeport export --family NAME``, ``edgeport.export(family=NAME)``)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from edgeport.errors import SourceError
from edgeport.registry import Registry
from edgeport.sources.base import Feeds, TensorSpec


@dataclass(frozen=True)
class Family:
    name: str
    model_name: str  # base name of the artifacts
    config_keys: frozenset[str]  # a checkpoint whose model_config has all of these belongs to the family
    input_specs: tuple[TensorSpec, ...]  # inputs of the export wrapper
    output_names: tuple[str, ...]
    hooks: dict[str, str] = field(default_factory=dict)  # see the module docstring
    keep_float: tuple[str, ...] = ()  # submodules kept float in every quantized format
    framework: str = "torch"  # the source framework whose models belong to the family

    def _hook(self, key: str) -> Any:
        if key not in self.hooks:
            raise SourceError(f"the {self.name} family ({self.framework} models) has no '{key}' hook")
        module, attr = self.hooks[key].split(":")
        return getattr(importlib.import_module(module), attr)

    def has(self, key: str) -> bool:
        return key in self.hooks

    def build_from_config(self, **cfg: Any) -> Any:
        return self._hook("build")(cfg)

    def wrap(self, model: Any) -> Any:
        return self._hook("wrap")(model)

    def inputs(self, cfg: dict) -> tuple[TensorSpec, ...]:
        return self.input_specs

    def reference_inputs(self, n: int = 200, seed: int = 0) -> Feeds:
        return self._hook("reference_inputs")(n=n, seed=seed)

    def calibration_inputs(self, n: int = 256, seed: int = 1) -> Feeds:
        return self._hook("calibration_inputs")(n=n, seed=seed)

    def config_path(self, model_path: Any) -> Any:
        return self._hook("config_path")(model_path)

    def load_config(self, handle: Any, path: Any) -> dict:
        return self._hook("load_config")(handle, path)

    def attach_data(self, handle: Any, data_path: Any, **kw: Any) -> None:
        if not self.has("attach_data"):
            raise SourceError(f"the {self.name} family takes no data folder")
        self._hook("attach_data")(handle, data_path, **kw)

    def float_layers(self, handle: Any, **kw: Any) -> tuple[str, ...]:
        return tuple(self._hook("float_layers")(handle, **kw)) if self.has("float_layers") else ()

    def static_op_types(self, handle: Any) -> tuple[str, ...] | None:
        return self._hook("static_op_types")(handle) if self.has("static_op_types") else None

    def npu_problems(self, handle: Any) -> list[str]:
        return list(self._hook("npu_problems")(handle)) if self.has("npu_problems") else []

    def export_folder(self, source: Any, **kw: Any) -> Any:
        return self._hook("export_folder")(source, **kw)


FAMILIES: Registry[Family] = Registry("model family", SourceError)

FAMILIES.register(
    "geo",
    Family(
        name="geo",
        model_name="geomodel",
        config_keys=frozenset({"n_species", "model_scale"}),
        input_specs=(TensorSpec("input", (None, 3)),),
        output_names=("probabilities",),
        hooks={
            "build": "edgeport.families.geo:build_from_config",
            "wrap": "edgeport.families.geo:wrap_geo",
            "reference_inputs": "edgeport.families.geo:reference_inputs",
            "calibration_inputs": "edgeport.families.geo:calibration_inputs",
        },
        keep_float=("model.encoding",),
    ),
)

FAMILIES.register(
    "hierarchy",
    Family(
        name="hierarchy",
        model_name="species",
        config_keys=frozenset({"backbone", "disease_names"}),
        input_specs=(TensorSpec("input", (None, 3, 224, 224)),),
        output_names=("species_logits", "embedding"),
        hooks={
            "build": "edgeport.families.hierarchy.model:build_from_config",
            "wrap": "edgeport.families.hierarchy.wrapper:wrap_species",
            "reference_inputs": "edgeport.families.hierarchy.wrapper:reference_inputs",
            "calibration_inputs": "edgeport.families.hierarchy.wrapper:calibration_inputs",
            "export_folder": "edgeport.families.hierarchy.export:export_hierarchy",
        },
    ),
)

#: the audio DS-CNN (Keras): specs are read from the .keras model; hooks in family.py (source) and
#: graph_rules.py (what the exporters ask)
_AUDIO = "edgeport.families.audio"
FAMILIES.register("audio", Family(
    name="audio", model_name="model", config_keys=frozenset({"audio_frontend", "sample_rate"}),
    input_specs=(), output_names=(), framework="keras",
    hooks={k: f"{_AUDIO}.family:{k}" for k in ("config_path", "load_config", "attach_data")}
    | {k: f"{_AUDIO}.graph_rules:{k}" for k in ("float_layers", "static_op_types", "npu_problems")},
))


def family_for_config(cfg: dict, framework: str = "torch") -> Family | None:
    """The family of ``framework`` whose config keys a checkpoint's model_config carries, if any."""
    for _, fam in FAMILIES.items():
        if fam.framework == framework and fam.config_keys and fam.config_keys <= set(cfg):
            return fam
    return None


def family_of(handle: Any) -> Family | None:
    """The registered family of a loaded handle (``None`` for a model of no family)."""
    name = getattr(handle, "family", None)
    return FAMILIES.get(name) if name and name in FAMILIES else None


def families_for(framework: str) -> list[Family]:
    return [fam for _, fam in FAMILIES.items() if fam.framework == framework]


__all__ = ["FAMILIES", "Family", "families_for", "family_for_config", "family_of", "lazy_attribute"]


def lazy_attribute(package: str, table: dict[str, str], name: str):
    """``package.<table[name]>.name``, imported on first use: a family package's ``__getattr__`` (its torch
    parts load only when used). A missing torch is a ``MissingDependencyError`` naming what needed it."""
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        mod = importlib.import_module(f"{package}.{module}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "torch":
            from edgeport.errors import MissingDependencyError

            raise MissingDependencyError("torch", f"{package}.{name}", "torch") from e
        raise
    return getattr(mod, name)

"""Reference model families: built in, constructible from a config, used by the demo and the tests.

A family is data plus hooks named as ``"module:attribute"`` strings, so that nothing heavy is imported
until a family is used. Adding a family is one registry entry here and its package under ``families/``.
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
    hooks: dict[str, str] = field(default_factory=dict)  # build, wrap, reference_inputs, calibration_inputs
    keep_float: tuple[str, ...] = ()  # submodules kept float in every quantized format

    def _hook(self, key: str) -> Any:
        module, attr = self.hooks[key].split(":")
        return getattr(importlib.import_module(module), attr)

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
        },
    ),
)


def family_for_config(cfg: dict) -> Family | None:
    """The family whose config keys a checkpoint's model_config carries, if any."""
    for _, fam in FAMILIES.items():
        if fam.config_keys <= set(cfg):
            return fam
    return None


__all__ = ["FAMILIES", "Family", "family_for_config"]

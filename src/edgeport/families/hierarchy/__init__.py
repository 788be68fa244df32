"""Species + disease image family (seed 002): a backbone with an embedding output, a species head, one
disease head per species; exported as the seed's deliverables folder (``deliverables.py``) with an OOD
detector (``ood.py``) and served by ``predict.py``.

Light to import: torch, onnx and onnxruntime load inside the functions that need them.
"""

from __future__ import annotations

from edgeport.families import lazy_attribute

FAMILY = "hierarchy"
MODEL_NAME = "species"
INPUT_NAME = "input"
OUTPUT_NAMES = ("species_logits", "embedding")

_LAZY = {
    "HierarchicalModel": "model",
    "build_model": "model",
    "build_from_config": "model",
    "wrap_species": "wrapper",
    "reference_inputs": "wrapper",
    "calibration_inputs": "wrapper",
    "load_hierarchy": "checkpoint",
    "make_hierarchy_checkpoint": "fit",
    "export_deliverables": "deliverables",
    "Predictor": "predict",
}


def __getattr__(name: str):
    return lazy_attribute(__name__, _LAZY, name)


__all__ = ["FAMILY", "INPUT_NAME", "MODEL_NAME", "OUTPUT_NAMES", *_LAZY]  # noqa: PLE0604

"""Model sources: load a checkpoint, a ``.pt2``, a module, a ``.keras`` or an ``.onnx`` into a ModelHandle."""

from edgeport.sources.base import Feeds, ModelHandle, TensorSpec

__all__ = ["Feeds", "ModelHandle", "TensorSpec"]

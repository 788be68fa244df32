"""Model sources: load a checkpoint, a ``.pt2``, a module, a ``.keras`` or an ``.onnx`` into a ModelHandle."""

from edgeport.sources.base import Feeds, ModelHandle, TensorSpec

__all__ = ["Feeds", "ModelHandle", "TensorSpec"]


def load_source(source, **kwargs) -> ModelHandle:
    """Load any supported source (path or in-memory model) into a ModelHandle.

    ``kwargs`` are the loader's options (``factory``, ``wrapper``, ``trust_source``, ``input_shapes``,
    ``output_names``, ``name``; ``model_config`` for a ``.keras``; ``input_ranges`` (``sources.inputs``) for a
    model without a family's reference inputs).
    """
    from pathlib import Path

    from edgeport.errors import SourceError

    if isinstance(source, (str, Path)):
        suffix = Path(source).suffix.lower()
        from edgeport.sources.torch import CHECKPOINT_SUFFIXES

        if suffix == ".keras":
            from edgeport.sources.keras import load_keras

            return _with_ranges(load_keras(source, **{k: v for k, v in kwargs.items() if k != "input_ranges"}),
                                kwargs.get("input_ranges"))
        kwargs.pop("model_config", None)
        if suffix in (".onnx", ".tflite"):
            from edgeport.sources.onnx import load_onnx
            from edgeport.sources.tflite import load_tflite

            return (load_onnx if suffix == ".onnx" else load_tflite)(source, **kwargs)
        ranges = kwargs.pop("input_ranges", None)
        if suffix in CHECKPOINT_SUFFIXES or suffix == ".pt2":
            from edgeport.sources.torch import load_torch

            return _with_ranges(load_torch(source, **kwargs), ranges)
        raise SourceError(
            f"edgeport cannot read '{source}': give a PyTorch checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) "
            "with --factory, a torch.export .pt2 file, a Keras .keras file, an .onnx or a .tflite file"
        )
    kwargs.pop("model_config", None)
    ranges = kwargs.pop("input_ranges", None)
    try:
        import torch

        if isinstance(source, torch.nn.Module):
            from edgeport.sources.torch import load_torch

            return _with_ranges(load_torch(source, **kwargs), ranges)
    except ImportError:
        pass
    raise SourceError(f"unsupported model source of type {type(source).__name__}")


def _with_ranges(handle: ModelHandle, ranges) -> ModelHandle:
    """``--input-range`` on a source whose family has no reference inputs: seeded random ones in those ranges."""
    if not ranges:
        return handle
    if handle.reference_inputs is not None:
        from edgeport.errors import ConfigError

        raise ConfigError(f"--input-range applies to models without a family's reference inputs; this "
                          f"{handle.family or handle.framework} model has its own (use --reference-inputs FILE.npz)")
    from edgeport.sources.inputs import attach_random_inputs

    attach_random_inputs(handle, ranges)
    return handle


__all__ += ["load_source"]

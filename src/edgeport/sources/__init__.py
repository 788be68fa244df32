"""Model sources: load a checkpoint, a ``.pt2``, a module, a ``.keras`` or an ``.onnx`` into a ModelHandle."""

from edgeport.sources.base import Feeds, ModelHandle, TensorSpec

__all__ = ["Feeds", "ModelHandle", "TensorSpec"]


def load_source(source, **kwargs) -> ModelHandle:
    """Load any supported source (path or in-memory model) into a ModelHandle.

    ``kwargs`` are the loader's options (``factory``, ``wrapper``, ``trust_source``, ``input_shapes``,
    ``output_names``, ``name``).
    """
    from pathlib import Path

    from edgeport.errors import SourceError

    if isinstance(source, (str, Path)):
        suffix = Path(source).suffix.lower()
        from edgeport.sources.torch import CHECKPOINT_SUFFIXES

        if suffix in CHECKPOINT_SUFFIXES or suffix == ".pt2":
            from edgeport.sources.torch import load_torch

            return load_torch(source, **kwargs)
        raise SourceError(
            f"edgeport cannot read '{source}': give a PyTorch checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) "
            "with --factory, or a torch.export .pt2 file"
        )
    try:
        import torch

        if isinstance(source, torch.nn.Module):
            from edgeport.sources.torch import load_torch

            return load_torch(source, **kwargs)
    except ImportError:
        pass
    raise SourceError(f"unsupported model source of type {type(source).__name__}")


__all__ += ["load_source"]

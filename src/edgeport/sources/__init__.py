"""Model sources: load a checkpoint, a ``.pt2``, a module, a ``.keras`` or an ``.onnx`` into a ModelHandle."""

from edgeport.sources.base import Feeds, ModelHandle, TensorSpec

__all__ = ["Feeds", "ModelHandle", "TensorSpec"]


def load_source(source, **kwargs) -> ModelHandle:
    """Load any supported source (path or in-memory model) into a ModelHandle.

    ``kwargs`` are the loader's options (``factory``, ``wrapper``, ``trust_source``, ``input_shapes``,
    ``output_names``, ``name``; ``model_config`` for a ``.keras``).
    """
    from pathlib import Path

    from edgeport.errors import SourceError

    if isinstance(source, (str, Path)):
        suffix = Path(source).suffix.lower()
        from edgeport.sources.torch import CHECKPOINT_SUFFIXES

        if suffix == ".keras":
            from edgeport.sources.keras import load_keras

            return load_keras(source, **kwargs)
        kwargs.pop("model_config", None)
        if suffix in CHECKPOINT_SUFFIXES or suffix == ".pt2":
            from edgeport.sources.torch import load_torch

            return load_torch(source, **kwargs)
        raise SourceError(
            f"edgeport cannot read '{source}': give a PyTorch checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) "
            "with --factory, a torch.export .pt2 file, or a Keras .keras file"
        )
    kwargs.pop("model_config", None)
    try:
        import torch

        if isinstance(source, torch.nn.Module):
            from edgeport.sources.torch import load_torch

            return load_torch(source, **kwargs)
    except ImportError:
        pass
    raise SourceError(f"unsupported model source of type {type(source).__name__}")


__all__ += ["load_source"]

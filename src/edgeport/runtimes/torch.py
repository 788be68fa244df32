"""The source model as a runner: an ``nn.Module`` with the handle's input and output names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeport.errors import MissingDependencyError, SourceError
from edgeport.runtimes.base import Runner
from edgeport.sources.base import Feeds, ModelHandle, TensorSpec


class TorchRunner(Runner):
    """Runs a PyTorch module under ``torch.no_grad``; outputs as float32 numpy arrays by name."""

    name = "torch"

    def __init__(self, module, inputs: tuple[TensorSpec, ...], output_names: tuple[str, ...], device: str = "cpu"):
        self.module = module
        self.inputs = tuple(inputs)
        self.output_names = tuple(output_names)
        self.device = device
        self.fixed_batch = None
        self.input_dtypes = {t.name: t.dtype for t in self.inputs}
        self.output_dtypes = {n: "float32" for n in self.output_names}

    @classmethod
    def from_handle(cls, handle: ModelHandle, device: str = "cpu") -> TorchRunner:
        if handle.framework != "torch":
            raise SourceError(f"TorchRunner needs a torch handle, got framework '{handle.framework}'")
        module = handle.model.to(device).eval() if device != "cpu" else handle.model.eval()
        return cls(module, handle.inputs, tuple(handle.output_names), device)

    @classmethod
    def open(cls, path: Path, *, inputs=None, output_names=None, device: str = "cpu", **kwargs) -> TorchRunner:
        """Load a ``torch.export`` program (``.pt2``); names default to the program's own."""
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("torch", "Running PyTorch models", "torch") from None
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"PyTorch program not found: {path}")
        try:
            program = torch.export.load(str(path))
        except Exception as e:
            raise SourceError(f"{path.name} is not a torch.export .pt2 program: {str(e).splitlines()[0][:200]}") from e
        module = program.module()
        sig = program.graph_signature
        if inputs is None:
            names = [s.arg.name for s in sig.input_specs if s.kind.name == "USER_INPUT"]
            inputs = tuple(TensorSpec(n, (None,)) for n in names)
        if output_names is None:
            output_names = tuple(f"output_{i}" for i, s in enumerate(sig.output_specs) if s.kind.name == "USER_OUTPUT")
        return cls(module, tuple(inputs), tuple(output_names), device)

    def infer(self, feeds: Feeds) -> dict[str, np.ndarray]:
        import torch

        args = [torch.as_tensor(np.asarray(feeds[t.name], dtype=t.dtype), device=self.device) for t in self.inputs]
        with torch.no_grad():
            out = self.module(*args)
        if isinstance(out, torch.Tensor):
            outs = [out]
        elif isinstance(out, dict):
            outs = [out[n] for n in self.output_names]
        else:
            outs = list(out)
        if len(outs) != len(self.output_names):
            raise ValueError(f"model returned {len(outs)} outputs, expected {len(self.output_names)}")
        return {n: o.detach().float().cpu().numpy() for n, o in zip(self.output_names, outs, strict=True)}

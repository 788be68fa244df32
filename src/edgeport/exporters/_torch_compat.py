"""Version-sensitive glue between edgeport and the PyTorch converters (torch.onnx dynamo, litert-torch).

Version notes (measured with torch 2.13.0, onnxscript 0.7.2, litert-torch 0.10.0 on 2026-11-22):
- ``torch.onnx.export(dynamo=True)`` prints progress lines unless ``verbose=False``; it returns an
  ``ONNXProgram`` whose ``model_proto`` we save ourselves, so ``external_data`` never splits the file.
  A batch dimension of size 1 in the sample would be specialised by ``torch.export``: samples use 2 rows.
- The dynamo exporter records the module path of every node in the node metadata key
  ``pkg.torch.onnx.name_scopes`` (a Python-literal list such as ``['', 'model', 'model.encoding', 'sin']``);
  edgeport maps ``ModelHandle.keep_float`` module paths to ONNX nodes through it.
- litert-torch names signature inputs after the forward's keyword arguments when the sample is given as
  ``sample_kwargs`` (positional samples give ``args_0``...), and signature outputs after the keys of a
  returned dict. The signature lists outputs alphabetically, the subgraph keeps the returned order.
  It lowers exact GELU to the builtin GELU op. Dynamic batch fails on slicing (``x[:, 0]``) and a
  static-batch model accepts ``resize_tensor_input`` but keeps its old output shape: it is fixed-batch.
- litert-torch names TFLite tensors after the module path, one ``<qualified class>_<attribute>`` segment
  per level joined by ``/`` (``.../HarmonicEncoding_encoding;3``): ``keep_float`` paths become regexes
  over those names for ai-edge-quantizer.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import logging
import re
import warnings
from collections.abc import Iterator, Sequence

from edgeport.errors import ConversionError, MissingDependencyError
from edgeport.sources.base import ModelHandle

log = logging.getLogger(__name__)

#: Node metadata key where the dynamo exporter stores module paths (torch >= 2.6).
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
#: Rows in the sample fed to torch.export (1 would be specialised to a static size).
SAMPLE_BATCH = 2
#: Attribute under which ``ordered_module`` holds ``handle.model`` (module paths gain this prefix).
WRAPPED_ATTR = "model"


def import_torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "Exporting a PyTorch model", "torch") from None
    return torch


#: Loggers that report harmless things at WARNING during conversion (e.g. "torchvision is not installed").
_CHATTY_LOGGERS = (
    "torch.onnx._internal.exporter._registration",
    # litert-torch imports torchao, which reports CUDA kernels and Triton missing: harmless on CPU
    "torchao",
    "torch.utils._pytree",
)


@contextlib.contextmanager
def native_output_captured() -> Iterator[None]:
    """Capture what native code (TFLite converter, LiteRT, ONNX Runtime) writes to file descriptors 1 and 2
    directly, bypassing ``sys.stdout``: dropped on success, replayed as one log warning when the block
    raises (so a converter's own error text is not lost)."""
    import os
    import sys
    import tempfile

    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
    except (OSError, ValueError, AttributeError):  # no real descriptors (embedded interpreter): nothing to do
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                tmp.seek(0)
                text = tmp.read().decode(errors="replace").strip()
                if text:
                    log.warning("native output before the error:\n%s", text[-4000:])


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence converter chatter on stdout/stderr (progress lines, warnings, native code's prints); errors
    still raise."""
    saved = {n: logging.getLogger(n).level for n in _CHATTY_LOGGERS}
    for n in _CHATTY_LOGGERS:
        logging.getLogger(n).setLevel(logging.ERROR)
    # libraries that log on the root logger itself (ONNX Runtime's quantizer: "Please consider to run
    # pre-processing ..."); a logger filter sees only records logged on that logger, not propagated ones
    root_filter = _BelowError()
    logging.getLogger().addFilter(root_filter)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            buf_out, buf_err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err), native_output_captured():
                yield
    finally:
        logging.getLogger().removeFilter(root_filter)
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def ordered_module(handle: ModelHandle, *, as_dict: bool):
    """Wrap ``handle.model`` so that it takes the inputs by their names and returns the outputs in
    ``handle.outputs`` order: a tuple (ONNX: names are given to the exporter) or a dict (litert-torch:
    dict keys become signature output names)."""
    torch = import_torch()
    names_in = list(handle.input_names)
    names_out = list(handle.output_names)
    bad = [n for n in names_in if not n.isidentifier()]
    if bad:
        raise ConversionError(f"input names {bad} are not Python identifiers; rename them to export from PyTorch")

    class OrderedOutputs(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *args, **kwargs):
            if kwargs:
                args = tuple(kwargs[n] for n in names_in)
            out = self.model(*args)
            if isinstance(out, torch.Tensor):
                outs: Sequence = (out,)
            elif isinstance(out, dict):
                missing = [n for n in names_out if n not in out]
                if missing:
                    raise ConversionError(f"the model's output dict lacks {missing}; it has {list(out)}")
                outs = [out[n] for n in names_out]
            elif isinstance(out, (tuple, list)):
                outs = out
            else:
                raise ConversionError(f"the model returned {type(out).__name__}; expected a tensor, tuple or dict")
            if len(outs) != len(names_out):
                raise ConversionError(f"the model returned {len(outs)} outputs, the handle names {len(names_out)}")
            if as_dict:
                return {n: o for n, o in zip(names_out, outs, strict=True)}
            return outs[0] if len(outs) == 1 else tuple(outs)

    # Give forward the input names as its signature (torch.export binds kwargs through it).
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names_in]
    OrderedOutputs.forward.__signature__ = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params])
    return OrderedOutputs(handle.model).eval()


def sample_tensors(handle: ModelHandle, batch: int) -> dict:
    """One seeded sample per input, realistic when the handle can make reference inputs."""
    torch = import_torch()
    feeds = None
    if handle.reference_inputs is not None:
        feeds = handle.reference_inputs(max(batch, 8), 0)
        feeds = {k: v[:batch] for k, v in feeds.items()}
    if feeds is None or set(feeds) != set(handle.input_names):
        feeds = handle.example_feeds(batch)
    return {n: torch.from_numpy(feeds[n].copy()) for n in handle.input_names}


def torch_to_onnx_proto(handle: ModelHandle, *, opset: int, dynamo: bool = True):
    """Export a torch handle with the dynamo exporter: names kept, batch dynamic where the spec says None.

    ``dynamo=False`` takes the TorchScript-based exporter with ``dynamic_axes`` (transformers' Swin: the dynamo
    exporter fails on a view in the window attention with a dynamic batch; measured in LESSONS.md)."""
    torch = import_torch()
    module = ordered_module(handle, as_dict=False)
    sample = sample_tensors(handle, SAMPLE_BATCH)
    check_eager(module, sample)
    if not dynamo:
        return _torchscript_onnx(torch, module, sample, handle, opset)
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} if spec.shape and spec.shape[0] is None else {} for spec in handle.inputs)
    try:
        with quiet(), torch.no_grad():
            program = torch.onnx.export(
                module,
                tuple(sample[n] for n in handle.input_names),
                dynamo=True,
                opset_version=opset,
                input_names=list(handle.input_names),
                output_names=list(handle.output_names),
                dynamic_shapes=dynamic,
                external_data=False,
                verbose=False,
                optimize=True,
            )
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"torch.onnx export failed: {_first_line(e)}") from e
    if program is None:
        raise ConversionError("torch.onnx export returned nothing")
    return program.model_proto


def _torchscript_onnx(torch, module, sample: dict, handle: ModelHandle, opset: int):
    import onnx

    axes = {t.name: {0: "batch"} for t in (*handle.inputs, *handle.outputs) if t.shape and t.shape[0] is None}
    buf = io.BytesIO()
    try:
        with quiet(), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(sample[n] for n in handle.input_names), buf, dynamo=False,
                              opset_version=opset, input_names=list(handle.input_names),
                              output_names=list(handle.output_names), dynamic_axes=axes, do_constant_folding=True)
    except Exception as e:
        raise ConversionError(f"torch.onnx export (TorchScript) failed: {_first_line(e)}") from e
    return onnx.load_model_from_string(buf.getvalue())


def node_scopes(node) -> list[str]:
    """The module paths a dynamo-exported node belongs to (empty when the metadata is absent)."""
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES_KEY:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return []
            return [s for s in scopes if isinstance(s, str)]
    return []


def tflite_scope_regex(module_path: str) -> str:
    """A regex that matches litert-torch tensor names created inside the module at ``module_path``."""
    parts = [re.escape(p) for p in module_path.split(".") if p]
    body = "/".join(rf"[^/;]*_{p}" for p in parts)
    return rf"(^|/){body}([/;]|$)"


def litert_convert(handle: ModelHandle, *, batch: int) -> bytes:
    """PyTorch -> TFLite FP32 with litert-torch, fixed batch, signature names = the handle's names."""
    try:
        with quiet():
            import litert_torch
    except ImportError:
        raise MissingDependencyError("litert-torch", "TFLite export from PyTorch", "litert") from None
    torch = import_torch()
    module = ordered_module(handle, as_dict=True)
    sample = sample_tensors(handle, batch)
    check_eager(module, sample)
    try:
        with quiet(), torch.no_grad():
            edge = litert_torch.convert(module, sample_kwargs=sample)
            return bytes(edge.model_content())
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"litert-torch conversion failed: {_first_line(e)}") from e


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(e: BaseException) -> str:
    """One line for the user: the exception and, when torch wraps it, its root cause."""
    def line(x: BaseException) -> str:
        text = _ANSI.sub("", str(x)).strip().splitlines()
        return f"{type(x).__name__}: {(text[0] if text else '')[:240]}"

    root = e
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    return line(e) if root is e else f"{line(e)} (cause: {line(root)})"


def check_eager(module, sample: dict) -> None:
    """Run the wrapped module once before converting, so that output-name mismatches and model errors
    surface as one clear line instead of a converter trace."""
    torch = import_torch()
    try:
        with torch.no_grad():
            module(**sample)
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"the model fails on a sample input: {_first_line(e)}") from e

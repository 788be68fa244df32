"""PyTorch sources: a checkpoint + factory, a ``torch.export`` ``.pt2`` file, or an ``nn.Module``.

Loading is safe by default: checkpoints go through ``torch.load(weights_only=True)`` and a ``.pt2`` is
accepted only when none of its payloads is pickled. ``trust_source=True`` lifts both restrictions.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeport.errors import MissingDependencyError, SourceError
from edgeport.families import FAMILIES, Family, family_for_config
from edgeport.sources.base import ModelHandle, TensorSpec

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
LICENSE_NAMES = ("MODEL_LICENSE.txt", "MODEL_LICENSE", "LICENSE.txt", "LICENSE")


def _torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "Loading a PyTorch model", "torch") from None
    return torch


def import_object(spec: str, what: str) -> Callable:
    """``"package.module:function"`` -> the object; the module is found on the current directory and
    PYTHONPATH."""
    if ":" not in spec:
        raise SourceError(f"{what} '{spec}' must look like module:function (e.g. mymodels:build_model)")
    module_name, attr = spec.split(":", 1)
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure of user code is the user's to fix
        raise SourceError(
            f"cannot import {what} module '{module_name}' ({type(e).__name__}: {e}); "
            "run from the folder that holds it or add that folder to PYTHONPATH"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SourceError(f"{what} module '{module_name}' has no attribute '{attr}'") from None


def _load_checkpoint(path: Path, trust_source: bool) -> Any:
    torch = _torch()
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_source)
    except Exception as e:  # noqa: BLE001 - every failure here means "not a checkpoint we can read"
        text = str(e)
        if not trust_source and ("weights_only" in text or "Unsupported global" in text):
            raise SourceError(
                f"{path} holds Python objects that safe loading refuses; if you trust where it came from, "
                "pass --trust-source"
            ) from None
        raise SourceError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {text.splitlines()[0]})") from None


def _state_and_config(obj: Any, path: Path) -> tuple[dict, dict]:
    if not isinstance(obj, dict):
        raise SourceError(
            f"{path} holds a {type(obj).__name__}, not a checkpoint dict; expected "
            "{'model_config': {...}, 'model_state_dict': {...}}"
        )
    state = obj.get("model_state_dict", obj.get("state_dict"))
    if not isinstance(state, dict):
        keys = sorted(map(str, obj))[:8]
        raise SourceError(
            f"{path} is not a model checkpoint: no 'model_state_dict' (found keys {keys}); save it as "
            "{'model_config': {...}, 'model_state_dict': model.state_dict()}"
        )
    cfg = obj.get("model_config", {})
    if not isinstance(cfg, dict):
        raise SourceError(f"{path}: 'model_config' must be a dict of keyword arguments, got {type(cfg).__name__}")
    return state, cfg


def _check_pt2_safe(path: Path) -> None:
    """Refuse a .pt2 archive that carries pickled weights, constants or objects."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            for name in names:
                if name.endswith(("_weights_config.json", "_constants_config.json")):
                    cfg = json.loads(z.read(name)).get("config", {})
                    if any(entry.get("use_pickle") for entry in cfg.values()):
                        raise SourceError(
                            f"{path} stores pickled tensors or objects; if you trust where it came from, "
                            "pass --trust-source"
                        )
    except zipfile.BadZipFile:
        raise SourceError(f"{path} is not a torch.export archive (.pt2 is a zip file)") from None
    if not any(n.endswith("models/model.json") for n in names):
        raise SourceError(f"{path} is not a torch.export archive saved by torch.export.save (no models/model.json)")


def _pt2_specs(ep) -> tuple[tuple[TensorSpec, ...], tuple[str, ...]]:
    args = ep.example_inputs[0] if ep.example_inputs else ()
    names = list(ep.graph_signature.user_inputs)
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    specs = []
    for name, example in zip(names, args, strict=False):
        val = placeholders[name].meta.get("val") if name in placeholders else None
        shape = []
        for i, d in enumerate(example.shape):
            dynamic = val is not None and not isinstance(val.shape[i], int)
            shape.append(None if dynamic else int(d))
        specs.append(TensorSpec(name, tuple(shape), str(example.dtype).replace("torch.", "")))
    out_spec = ep.call_spec.out_spec
    if out_spec is not None and out_spec.type is dict:
        outs = tuple(str(k) for k in out_spec.context)
    else:
        outs = tuple(f"output_{i}" for i in range(len(ep.graph_signature.user_outputs)))
    return tuple(specs), outs


def _pt2_module(torch, ep):
    """The exported program as a module that ignores keyword arguments it was not exported with (a wrapper
    may call ``model(lat, lon, week, return_env=False)`` on a program exported from positional inputs)."""
    inner = ep.module()
    in_spec = ep.call_spec.in_spec
    kw_names = set(in_spec.child(1).context) if in_spec is not None and in_spec.num_children == 2 else set()

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.program = inner

        def forward(self, *args, **kwargs):
            return self.program(*args, **{k: v for k, v in kwargs.items() if k in kw_names})

        def train(self, mode: bool = True):
            # an exported program keeps the mode it was exported in and refuses train()/eval()
            self.training = mode
            return self

    return Exported()


def _module_outputs_as_tuple(torch, module, names: tuple[str, ...]):
    class Ordered(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = module

        def forward(self, *args):
            out = self.model(*args)
            if isinstance(out, dict):
                return tuple(out[n] for n in names)
            return out

    return Ordered()


def parse_input_shapes(items: list[str] | None) -> tuple[TensorSpec, ...]:
    """``["input=N,3"]`` -> TensorSpec("input", (None, 3)); ``N`` (or ``-1``) is a dimension of any size."""
    specs = []
    for item in items or []:
        try:
            name, dims = item.split("=", 1)
            shape = tuple(None if d.strip() in ("N", "-1", "?") else int(d) for d in dims.split(","))
        except ValueError:
            raise SourceError(f"--input-shape expects NAME=DIMS such as input=N,3, got '{item}'") from None
        specs.append(TensorSpec(name.strip(), shape))
    return tuple(specs)


def load_torch(
    source: Any,
    *,
    factory: str | Callable | None = None,
    wrapper: str | Callable | None = None,
    trust_source: bool = False,
    input_shapes: tuple[TensorSpec, ...] = (),
    output_names: tuple[str, ...] = (),
    name: str | None = None,
) -> ModelHandle:
    """Load a PyTorch source into a handle: a checkpoint path (with ``factory``, or a family checkpoint), a
    ``.pt2`` path, or an ``nn.Module``. ``wrapper`` is a family name (``"geo"``), ``"none"``,
    ``"module:function"`` or a callable taking the model and returning the module to export."""
    torch = _torch()
    path = None if isinstance(source, torch.nn.Module) else _source_path(source)
    family, cfg, build = None, {}, None
    if path is None:
        model, specs_in, outs = source, (), ()
    elif path.suffix == ".pt2":
        model, specs_in, outs = _load_pt2(torch, path, trust_source)
    else:
        model, family, cfg, build = _load_checkpoint_model(torch, path, factory, trust_source)
        specs_in, outs = (), ()
    model.eval()

    wrap, family = _resolve_wrapper(wrapper, family)
    if wrap is not None:
        model = wrap(model)
        if not isinstance(model, torch.nn.Module):
            raise SourceError(f"wrapper returned {type(model).__name__}, not a torch.nn.Module")
        model.eval()
        specs_in, outs = (), ()
    fam = family if wrap is not None else None  # a family's inputs, names and hooks hold for its wrapped model
    specs_in, outs = _io_names(model, fam, cfg, input_shapes or specs_in, tuple(output_names) or outs,
                               explicit=(bool(input_shapes), bool(output_names)))
    if not outs:
        outs = _probe_output_names(torch, model, specs_in)
    if len(outs) > 1:
        model = _module_outputs_as_tuple(torch, model, outs).eval()
    out_specs = _probe_output_specs(torch, model, specs_in, outs)

    handle = ModelHandle(
        name=name or (fam.model_name if fam else (path.stem if path else type(model).__name__.lower())),
        framework="torch",
        model=model,
        inputs=specs_in,
        outputs=out_specs,
        family=fam.name if fam else None,
        source_path=path,
        config=cfg,
        keep_float=_existing_modules(model, fam.keep_float) if fam else (),
        reference_inputs=fam.reference_inputs if fam else None,
        calibration_inputs=fam.calibration_inputs if fam else None,
    )
    if path is not None:
        d = path.parent
        handle.labels_file = d / "labels.txt" if (d / "labels.txt").exists() else None
        handle.license_file = next((d / n for n in LICENSE_NAMES if (d / n).exists()), None)
    if handle.license_file is None and factory is not None and build is not None:
        handle.license_file = factory_license(build)
    return handle


def _source_path(source: Any) -> Path:
    path = Path(source)
    if not path.exists():
        raise SourceError(f"model source not found: {path}")
    if path.is_dir():
        raise SourceError(f"{path} is a directory; pass the checkpoint file inside it")
    return path


def _load_pt2(torch, path: Path, trust_source: bool):
    """A ``.pt2`` (torch.export) archive -> (module, input specs, output names); a fixed batch is refused."""
    if not trust_source:
        _check_pt2_safe(path)
    try:
        ep = torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001
        raise SourceError(f"{path} could not be loaded by torch.export.load ({type(e).__name__}: {e})") from None
    specs_in, outs = _pt2_specs(ep)
    fixed = [t for t in specs_in if t.shape and t.shape[0] is not None]
    if fixed:
        raise SourceError(
            f"{path} was exported with a fixed batch of {fixed[0].shape[0]} (input '{fixed[0].name}'); "
            "edgeport validates on hundreds of rows: re-export with a dynamic batch, e.g. "
            "dynamic_shapes={'" + fixed[0].name + "': {0: torch.export.Dim('batch')}}"
        )
    return _pt2_module(torch, ep), specs_in, outs


def _load_checkpoint_model(torch, path: Path, factory, trust_source: bool):
    """A checkpoint -> (module, its family or None, model_config, the builder used or None): a whole pickled
    module (``trust_source``), or the weights built by ``factory`` or by the family the config names."""
    from edgeport.sources.base import check_model_file

    check_model_file(path, "PyTorch checkpoint", zip_member="data.pkl", pickle_ok=True)
    obj = _load_checkpoint(path, trust_source)
    if trust_source and isinstance(obj, torch.nn.Module):
        return obj, None, {}, None
    state, cfg = _state_and_config(obj, path)
    family = family_for_config(cfg) if factory is None else None
    if factory is not None:
        build = import_object(factory, "factory") if isinstance(factory, str) else factory
    elif family is not None:
        build = family.build_from_config
    else:
        raise SourceError(
            f"{path} does not hold a model of a built-in family ({', '.join(FAMILIES.names())}); "
            "pass --factory module:function that builds your model from the checkpoint's model_config"
        )
    try:
        model = build(**cfg)
    except TypeError as e:
        raise SourceError(f"factory could not build the model from model_config {sorted(cfg)}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise SourceError(f"factory returned {type(model).__name__}, not a torch.nn.Module")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0:3]
        raise SourceError(f"the checkpoint's weights do not fit the factory's model: {' '.join(first)}") from None
    return model, family, cfg, build


def _resolve_wrapper(wrapper, family: Family | None) -> tuple[Callable | None, Family | None]:
    """(the export wrapper, the family it stands for): an explicit one, or the source's family's."""
    if isinstance(wrapper, str) and wrapper in FAMILIES:
        family = FAMILIES.get(wrapper)
        return family.wrap, family
    if wrapper == "none":
        return None, None
    if isinstance(wrapper, str):
        return import_object(wrapper, "wrapper"), family
    if callable(wrapper):
        return wrapper, family
    return (family.wrap if family else None), family


def _io_names(model, family: Family | None, cfg: dict, specs_in, outs, *, explicit: tuple[bool, bool]):
    """Input specs and output names: explicit > declared by the module (``edgeport_inputs`` /
    ``edgeport_outputs``) > the wrapping family's > the ``.pt2`` signature."""
    declared_in = getattr(model, "edgeport_inputs", None)
    declared_out = getattr(model, "edgeport_outputs", None)
    if not explicit[0]:
        if declared_in:
            specs_in = tuple(TensorSpec(n, tuple(s)) for n, s in dict(declared_in).items())
        elif family is not None:
            specs_in = family.inputs(cfg)
    if not explicit[1]:
        if declared_out:
            outs = tuple(declared_out)
        elif family is not None:
            outs = family.output_names
    if not specs_in:
        raise SourceError(
            "edgeport cannot tell this model's inputs: pass --input-shape NAME=DIMS (e.g. input=N,3), use a "
            "--wrapper, or give the wrapped module an 'edgeport_inputs' attribute"
        )
    return tuple(specs_in), tuple(outs)


#: licence files looked for in the folder of a factory's module (the model's package), as the seed does
FACTORY_LICENSE_NAMES = ("MODEL_LICENSE.txt", "MODEL_LICENSE")


def factory_license(build) -> Path | None:
    """``MODEL_LICENSE.txt`` in the folder of the module that defines the factory, if there is one."""
    try:
        d = Path(inspect.getfile(inspect.unwrap(build))).resolve().parent
    except (TypeError, OSError):
        return None
    return next((d / n for n in FACTORY_LICENSE_NAMES if (d / n).is_file()), None)


def _run_example(torch, model, specs_in: tuple[TensorSpec, ...]):
    feeds = [torch.from_numpy(t.example(2)) for t in specs_in]
    with torch.no_grad():
        try:
            return model(*feeds)
        except Exception as e:  # noqa: BLE001 - a model that cannot run on its declared inputs is a user error
            shapes = ", ".join(f"{t.name}{list(t.shape)}" for t in specs_in)
            raise SourceError(f"the model does not run on inputs {shapes} ({type(e).__name__}: {e})") from None


def _probe_output_names(torch, model, specs_in) -> tuple[str, ...]:
    out = _run_example(torch, model, specs_in)
    if isinstance(out, dict):
        return tuple(out)
    if isinstance(out, (tuple, list)):
        return tuple(f"output_{i}" for i in range(len(out)))
    return ("output",)


def _probe_output_specs(torch, model, specs_in, outs) -> tuple[TensorSpec, ...]:
    out = _run_example(torch, model, specs_in)
    if isinstance(out, dict):
        out = [out[n] for n in outs]
    elif not isinstance(out, (tuple, list)):
        out = [out]
    if len(out) != len(outs):
        raise SourceError(f"the model returns {len(out)} outputs but {len(outs)} names were given: {list(outs)}")
    return tuple(
        TensorSpec(n, (None, *tuple(int(d) for d in o.shape[1:])), str(o.dtype).replace("torch.", ""))
        for n, o in zip(outs, out, strict=True)
    )


def _existing_modules(model, paths: tuple[str, ...]) -> tuple[str, ...]:
    """The module paths of ``paths`` that ``model`` has: a user's geo-style model may name its encodings
    ``encoder.lat_enc`` instead of ``model.encoding``, and the manifest must not claim a module it lacks
    (the input side stays float by the graph rules either way)."""
    names = {n for n, _ in model.named_modules()} if hasattr(model, "named_modules") else set()
    missing = [p for p in paths if p not in names]
    if missing:
        log.info("keep_float: the model has no module %s; the graph rules keep its input side float", missing)
    return tuple(p for p in paths if p in names)

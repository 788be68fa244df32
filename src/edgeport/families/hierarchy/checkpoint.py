"""Load a user's species + disease model: checkpoint kinds, class names, and every refusal before any work.

Checkpoints as users have them, each loaded safely (``torch.load(weights_only=True)``, ``--trust-source`` to
lift it) and built by ``--factory module:function`` (or the family's builder when ``model_config`` is the
family's): a plain ``state_dict``; edgeport's ``{model_config, model_state_dict}``; a PyTorch Lightning
``.ckpt`` (``state_dict`` under ``"state_dict"`` with keys prefixed ``model.``, ``hyper_parameters``).
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeport.errors import SourceError

DEFAULT_IMAGE_SIZE = 224
DEFAULT_HEADS_ATTR = "disease_heads"
FAMILY_CONFIG_KEYS = frozenset({"backbone", "disease_names"})
LIGHTNING_PREFIX = "model."


@dataclass
class HierarchySource:
    model: Any  # nn.Module in eval mode: forward(x) -> (species_logits, embedding)
    heads: dict  # species name -> nn.Linear, in class order
    class_names: list[str]
    disease_names: dict[str, list[str]]
    image_size: int
    embedding_dim: int
    kind: str  # "state_dict" | "edgeport" | "lightning" | "module"
    config: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def head_files(self) -> dict[str, str]:
        return {s: head_stem(s) for s in self.class_names}


def head_stem(species: str) -> str:
    """The file stem of a species' head: lower case, runs of anything but ``a-z0-9._-`` become ``-``."""
    return re.sub(r"[^a-z0-9._-]+", "-", species.strip().lower()).strip("-.") or "species"


def _is_tensor_dict(torch, obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: Path, trust_source: bool = False) -> tuple[dict, dict, dict, str]:
    """-> (state_dict, model_config, extras holding class_names / disease_names, kind)."""
    from edgeport.sources.torch import _load_checkpoint, _torch

    torch = _torch()
    obj = _load_checkpoint(Path(path), trust_source)
    if _is_tensor_dict(torch, obj):
        return obj, {}, {}, "state_dict"
    if not isinstance(obj, dict):
        raise SourceError(f"{path} holds a {type(obj).__name__}, not a state_dict or checkpoint dict")
    if isinstance(obj.get("model_state_dict"), dict):
        cfg = obj.get("model_config") or {}
        if not isinstance(cfg, dict):
            raise SourceError(f"{path}: 'model_config' must be a dict, got {type(cfg).__name__}")
        return obj["model_state_dict"], dict(cfg), obj, "edgeport"
    if isinstance(obj.get("state_dict"), dict):
        sd = obj["state_dict"]
        if sd and all(k.startswith(LIGHTNING_PREFIX) for k in sd):
            sd = {k[len(LIGHTNING_PREFIX):]: v for k, v in sd.items()}
        hp = obj.get("hyper_parameters") or {}
        hp = hp if isinstance(hp, dict) else {}
        cfg = hp.get("model_config") if isinstance(hp.get("model_config"), dict) else hp
        extras = {**hp, **{k: obj[k] for k in ("class_names", "disease_names") if k in obj}}
        return sd, dict(cfg), extras, "lightning"
    raise SourceError(f"{path} is not a model checkpoint: no state_dict found (keys {sorted(map(str, obj))[:8]}); "
                      "save model.state_dict(), {'model_config':..., 'model_state_dict':...} or a Lightning .ckpt")


def read_labels_file(path: Path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"--labels file not found: {p}")
    names = [line.split("\t")[0].strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise SourceError(f"--labels {p} lists no class names (one per line)")
    return names


def read_disease_labels(path: Path) -> dict[str, list[str]]:
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"--disease-labels file not found: {p}")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise SourceError(f"--disease-labels {p} is not valid JSON ({e})") from None
    if not isinstance(d, dict) or not all(isinstance(v, list) and v for v in d.values()):
        raise SourceError(f"--disease-labels {p} must map each species to a non-empty list of disease names")
    return {str(k): [str(x) for x in v] for k, v in d.items()}


def check_names(class_names: list[str], disease_names: dict[str, list[str]], heads: dict) -> None:
    """Refuse a head not in the class list, a species without a head or disease names, a wrong disease count,
    duplicates, and species whose head file names would collide."""
    dup = sorted({s for s in class_names if class_names.count(s) > 1})
    if dup:
        raise SourceError(f"class names appear twice: {dup}")
    extra = [h for h in heads if h not in class_names]
    if extra:
        raise SourceError(f"disease heads {extra[:10]} are not in the class list ({len(class_names)} classes, e.g. "
                          f"{class_names[:5]}); fix the names or pass --labels FILE in training order")
    missing = [s for s in class_names if s not in heads]
    if missing:
        raise SourceError(f"species without a disease head: {missing[:10]}; every species needs one")
    no_names = [s for s in class_names if s not in disease_names]
    if no_names:
        raise SourceError(f"species without disease names: {no_names[:10]}; pass --disease-labels FILE.json")
    wrong = [f"{s} (head {heads[s].out_features}, names {len(disease_names[s])})" for s in class_names
             if heads[s].out_features != len(disease_names[s])]
    if wrong:
        raise SourceError(f"disease head sizes do not match the disease names: {wrong[:5]}")
    stems: dict[str, str] = {}
    for s in class_names:
        other = stems.setdefault(head_stem(s), s)
        if other != s:
            raise SourceError(f"species '{other}' and '{s}' would both write disease-heads/{head_stem(s)}.onnx; "
                              "rename one")


def _build(factory, cfg: dict, class_names, disease_names):
    from edgeport.sources.torch import import_object

    if factory is not None:
        build = import_object(factory, "factory") if isinstance(factory, str) else factory
    elif FAMILY_CONFIG_KEYS <= set(cfg):
        from edgeport.families.hierarchy.model import build_model as build
    else:
        raise SourceError("this checkpoint does not say how to build its model: pass --factory module:function "
                          "(e.g. edgeport.families.hierarchy:build_model, or your own)")
    kwargs = dict(cfg)
    try:
        params = inspect.signature(build).parameters
    except (TypeError, ValueError):
        params = {}
    for k, v in (("class_names", class_names), ("disease_names", disease_names)):
        if k in params and k not in kwargs and v is not None:
            kwargs[k] = v
    try:
        return build(**kwargs)
    except TypeError as e:
        raise SourceError(f"factory could not build the model from {sorted(kwargs)}: {e}") from None


def load_hierarchy(path=None, *, model=None, factory=None, trust_source: bool = False,
                   heads_attr: str = DEFAULT_HEADS_ATTR, labels: Path | None = None,
                   disease_labels: Path | None = None, image_size: int | None = None,
                   class_names: list[str] | None = None, disease_names: dict | None = None) -> HierarchySource:
    """A checkpoint path (or an ``nn.Module`` as ``model``) -> a checked ``HierarchySource``."""
    from edgeport.sources.torch import _torch

    torch = _torch()
    cfg: dict = {}
    extras: dict = {}
    kind = "module"
    if model is None:
        if path is None:
            raise SourceError("no model given: pass a checkpoint")
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"model source not found: {path}")
        state, cfg, extras, kind = read_checkpoint(path, trust_source)
    names = (read_labels_file(labels) if labels else None) or class_names or extras.get("class_names") or cfg.get("class_names")
    diseases = (read_disease_labels(disease_labels) if disease_labels else None) or disease_names or \
        extras.get("disease_names") or cfg.get("disease_names")
    if not names:
        raise SourceError("the checkpoint has no class_names: pass --labels FILE (species in training order)")
    if not diseases:
        raise SourceError("the checkpoint has no disease_names: pass --disease-labels FILE.json ({species: [diseases]})")
    names = [str(n) for n in names]
    diseases = {str(k): [str(x) for x in v] for k, v in dict(diseases).items()}
    if model is None:
        model = _build(factory, cfg, names, diseases)
        if not isinstance(model, torch.nn.Module):
            raise SourceError(f"factory returned {type(model).__name__}, not a torch.nn.Module")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise SourceError("the checkpoint's weights do not fit the factory's model: "
                              + " ".join(str(e).splitlines()[:3])) from None
    model.eval()
    heads = getattr(model, heads_attr, None)
    if not isinstance(heads, torch.nn.ModuleDict):
        raise SourceError(f"the model has no nn.ModuleDict '{heads_attr}' of disease heads; pass --heads-attr NAME")
    bad = [k for k, h in heads.items() if not isinstance(h, torch.nn.Linear)]
    if bad:
        raise SourceError(f"disease heads {bad[:5]} are not nn.Linear")
    check_names(names, diseases, dict(heads.items()))
    size = int(image_size or cfg.get("image_size") or extras.get("image_size") or DEFAULT_IMAGE_SIZE)
    with torch.no_grad():
        try:
            out = model(torch.zeros(2, 3, size, size))
        except Exception as e:  # noqa: BLE001 - a model that cannot run on its input is a user error
            raise SourceError(f"the model does not run on (2, 3, {size}, {size}) ({type(e).__name__}: {e}); "
                              "check --image-size") from None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise SourceError("forward(x) must return (species_logits, embedding)")
    logits, emb = out
    if logits.shape[-1] != len(names):
        raise SourceError(f"species_logits has {logits.shape[-1]} columns but there are {len(names)} class names")
    dim = int(emb.shape[-1])
    wrong = [s for s in names if heads[s].in_features != dim]
    if wrong:
        raise SourceError(f"disease heads {wrong[:5]} take {heads[wrong[0]].in_features} inputs, the embedding has {dim}")
    return HierarchySource(model=model, heads={s: heads[s] for s in names}, class_names=names,
                           disease_names={s: diseases[s] for s in names}, image_size=size, embedding_dim=dim,
                           kind=kind, config=cfg, path=path)

"""``<name>_model_config.json``: the seed system's keys plus edgeport's architecture options."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgeport.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

#: Names of the layers the conversion step looks for (SPEC §5).
NORMALIZE_LAYER = "frontend_normalize"
LOGITS_LAYER = "logits"
SIGMOID_LAYER = "sigmoid"
EMBEDDING_LAYER = "embedding_pool"


@dataclass(frozen=True)
class AudioModelConfig:
    """Everything needed to rebuild the model input from audio and to rebuild the architecture."""

    sample_rate: int = 24000
    num_mels: int = 64
    spec_width: int = 256
    fft_length: int = 512
    chunk_duration: float = 3.0
    audio_frontend: str = "hybrid"
    mag_scale: str = "pwl"
    embeddings_size: int = 256
    alpha: float = 1.0
    depth_multiplier: int = 1
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    frontend_trainable: bool = False
    n_mfcc: int = 20
    use_se: bool = True
    se_reduction: int = 8
    use_inverted_residual: bool = True
    expansion_factor: int = 2
    use_attention_pooling: bool = False
    dropout: float = 0.5
    model: str = "dscnn"
    #: input contract (edgeport.families.audio.contract); the defaults are edgeport's own models'
    input_scaling: str = "peak"
    pad_bins_in_graph: bool = False
    input_rank: int = 0  # 0: the frontend's features plus a channel axis of 1
    #: does the model end in a sigmoid? None: evaluation decides from the output name and scores
    sigmoid_in_graph: bool | None = None
    #: the config gave no contract keys (a seed-system file): the artifact's input shape may settle the bins'
    #: padding and the rank (``contract.resolve``); not written to files
    contract_from_artifact: bool = field(default=False, compare=False)
    hop_length: int = field(default=0)

    def __post_init__(self):
        from edgeport.audio.spectrogram import hop_length
        from edgeport.families.audio.frontends import check_pair, resolve_frontend

        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "audio_frontend", resolve_frontend(self.audio_frontend))
        check_pair(self.audio_frontend, self.mag_scale)
        if self.num_classes != len(self.class_names) and self.class_names:
            raise ConfigError(f"num_classes={self.num_classes} but {len(self.class_names)} class names given")
        for name in ("sample_rate", "num_mels", "spec_width", "fft_length", "embeddings_size", "depth_multiplier",
                     "se_reduction", "expansion_factor", "n_mfcc"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.alpha <= 0 or self.chunk_duration <= 0:
            raise ConfigError("alpha and chunk_duration must be positive")
        if self.audio_frontend == "mfcc" and self.n_mfcc > self.num_mels:
            raise ConfigError(f"--n-mfcc {self.n_mfcc} is more than --num-mels {self.num_mels}: the DCT of "
                              f"{self.num_mels} mel bands gives at most {self.num_mels} coefficients; lower "
                              "--n-mfcc or raise --num-mels")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "hop_length", hop_length(self.sample_rate, self.chunk_duration, self.spec_width))
        self._check_contract()

    def _check_contract(self) -> None:
        from edgeport.families.audio import contract

        contract.SCALINGS.get(self.input_scaling)  # unknown -> ConfigError listing peak, minmax, none
        if not isinstance(self.pad_bins_in_graph, bool):
            raise ConfigError(f"pad_bins_in_graph must be true or false, got {self.pad_bins_in_graph!r}")
        if self.sigmoid_in_graph is not None and not isinstance(self.sigmoid_in_graph, bool):
            raise ConfigError(f"sigmoid_in_graph must be true, false or null, got {self.sigmoid_in_graph!r}")
        rank = int(self.input_rank) or contract.default_rank(self)
        if rank not in contract.allowed_ranks(self):
            raise ConfigError(f"input_rank {self.input_rank} does not fit the {self.audio_frontend} frontend: "
                              f"use {' or '.join(map(str, contract.allowed_ranks(self)))} (with the batch axis)")
        object.__setattr__(self, "input_rank", rank)

    @property
    def chunk_samples(self) -> int:
        return round(self.sample_rate * self.chunk_duration)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Model input shape without the batch axis (the input contract's)."""
        from edgeport.families.audio.contract import input_shape

        return input_shape(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("contract_from_artifact")
        d["class_names"] = list(self.class_names)
        d["input_shape"] = list(self.input_shape)
        d["layer_names"] = {"normalize": NORMALIZE_LAYER if self.audio_frontend == "hybrid" else None,
                            "logits": LOGITS_LAYER, "sigmoid": SIGMOID_LAYER}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AudioModelConfig:
        """A config dict; one without edgeport's own keys (the seed system's files) means the seed system's
        input contract (``contract.seed_contract``), the contract keys it gives win."""
        from edgeport.families.audio.contract import seed_contract

        known = {f.name for f in fields(cls)} - {"hop_length", "contract_from_artifact"}
        kw = {k: v for k, v in d.items() if k in known}
        if is_seed_config(d):
            kw = {**seed_contract(str(kw.get("audio_frontend", cls.audio_frontend))), **kw,
                  "contract_from_artifact": True}
        if "class_names" in kw and "num_classes" not in kw:
            kw["num_classes"] = len(kw["class_names"])
        cfg = cls(**kw)
        given = d.get("hop_length")
        if isinstance(given, (int, float)) and int(given) != cfg.hop_length:
            log.warning("The model config says hop_length %s but edgeport computes %d from sample_rate, "
                        "chunk_duration and spec_width: spectrograms use %d", given, cfg.hop_length, cfg.hop_length)
        return cfg

    def replace(self, **changes) -> AudioModelConfig:
        from edgeport.families.audio.contract import default_rank

        d = asdict(self)
        d.pop("hop_length")
        if "audio_frontend" in changes and "input_rank" not in changes and self.input_rank == default_rank(self):
            d["input_rank"] = 0  # the new frontend's default rank
        d.update(changes)
        return AudioModelConfig(**d)


#: keys of the seed system's model configs; any other known key makes a config edgeport's
SEED_KEYS = frozenset({"sample_rate", "num_mels", "spec_width", "fft_length", "chunk_duration", "hop_length",
                       "audio_frontend", "mag_scale", "embeddings_size", "alpha", "depth_multiplier", "num_classes",
                       "class_names", "frontend_trainable"})


def is_seed_config(d: dict) -> bool:
    """No key of edgeport's own (architecture options, contract keys, the written input_shape/layer_names)."""
    own = ({f.name for f in fields(AudioModelConfig)} | {"input_shape", "layer_names"}) - SEED_KEYS - {
        "contract_from_artifact"}
    return not (own & set(d))


def write_model_config(cfg: AudioModelConfig, path: Path) -> None:
    """Write atomically (temporary name, then rename)."""
    from edgeport.fileio import atomic_write_json

    atomic_write_json(Path(path), cfg.to_dict())


def read_model_config(path: Path) -> AudioModelConfig:
    """Read an edgeport or seed-system ``*_model_config.json``."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"Model config not found: {path} (it is written beside the .keras as "
                          "<name>_model_config.json)")
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SourceError(f"Unreadable model config {path}: {e}") from e
    if not isinstance(d, dict):
        raise SourceError(f"Model config {path} is not a JSON object")
    return AudioModelConfig.from_dict(d)


def config_path_for(model_path: Path, suffix: str = "") -> Path:
    """``X.keras`` -> ``X<suffix>_model_config.json``."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}{suffix}_model_config.json")


#: file an export folder holds beside its artifacts (edgeport.export writes it)
MANIFEST_NAME = "manifest.json"


def _artifact_suffixes() -> list[str]:
    """Name suffixes the export formats add to the model name (``_quantized``, ``_fp16``, ...), and training's
    ``_qat`` (same classes as the model it fine-tunes), longest first."""
    from edgeport.exporters import FORMATS

    return sorted({spec.suffix for _, spec in FORMATS.items() if spec.suffix} | {"_qat"}, key=len, reverse=True)


def _config_from_manifest(manifest: Path) -> tuple[AudioModelConfig, str] | None:
    try:
        src = json.loads(manifest.read_text()).get("source") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    cfg = src.get("model_config") if isinstance(src, dict) else None
    if isinstance(cfg, dict) and "audio_frontend" in cfg and "sample_rate" in cfg:
        return AudioModelConfig.from_dict(cfg), f"{manifest} (source.model_config)"
    path = src.get("path") if isinstance(src, dict) else None
    if path:
        beside = config_path_for(Path(path))
        if beside.is_file():
            return read_model_config(beside), str(beside)
    return None


def find_model_config(artifact: Path | str, explicit: Path | str | None = None) -> tuple[AudioModelConfig, str]:
    """The model config of an artifact and where it came from.

    ``explicit`` if given; else ``X_model_config.json`` beside ``X.<ext>``; else the same with an export
    suffix removed (``X_quantized.tflite``, ``X_fp16.onnx``, ``X_int8.tflite`` -> ``X_model_config.json``; a
    ``.failed`` marker too; ``X_qat.keras`` without its own config); else the ``manifest.json`` of the export folder (its source's model config).
    """
    if explicit is not None:
        return read_model_config(Path(explicit)), str(explicit)
    artifact = Path(artifact)
    stem = artifact.name if artifact.is_dir() else artifact.stem
    stem = stem.removesuffix(".failed")
    names, suffixes = [stem], _artifact_suffixes()
    while (cut := next((s for s in suffixes if names[-1].endswith(s) and len(names[-1]) > len(s)), None)) is not None:
        names.append(names[-1][: -len(cut)])  # X_qat_quantized -> X_qat -> X
    dirs = [artifact.parent] + ([artifact] if artifact.is_dir() else [])
    looked = []
    for d in dirs:
        for n in names:
            p = d / f"{n}_model_config.json"
            looked.append(p.name)
            if p.is_file():
                return read_model_config(p), str(p)
    manifest = artifact.parent / MANIFEST_NAME
    if manifest.is_file():
        got = _config_from_manifest(manifest)
        if got is not None:
            return got
        looked.append(f"{MANIFEST_NAME} (no audio model config in it)")
    raise SourceError(f"No model config found for {artifact.name} (looked for {', '.join(dict.fromkeys(looked))} "
                      f"in {artifact.parent}): pass --model-config PATH")

"""``TrainConfig``: every option of ``edgeport train`` (seed 004's flags, same meanings and defaults).

The model's options (architecture and input, ``MODEL_OPTIONS``) live in one ``AudioModelConfig``,
``TrainConfig.audio`` (without classes: training takes those from the data folder); the other fields are
training's own. A config is built, written and read flat, as the flags name the options:
``TrainConfig(data_path_train="birds", num_mels=32)``, ``to_dict()`` / ``from_dict()`` (the ``train_config``
of a study's ``best_params.json`` and of its trials).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from edgeport.errors import ConfigError
from edgeport.families.audio.model_config import AudioModelConfig

OPTIMIZERS = ("adam", "sgd", "adamw")
LOSSES = ("auto", "bce", "focal")

#: AudioModelConfig fields that training options set (the rest: classes from the data folder, the input
#: contract of edgeport's own models, derived values)
MODEL_OPTIONS = frozenset(f.name for f in fields(AudioModelConfig)) - {
    "num_classes", "class_names", "hop_length", "contract_from_artifact", "input_scaling", "pad_bins_in_graph",
    "input_rank", "sigmoid_in_graph"}


def _default_workers() -> int:
    from edgeport.training.data import default_num_workers

    return default_num_workers()


@dataclass(frozen=True, init=False)
class TrainConfig:
    data_path_train: str
    checkpoint_path: str = "checkpoints/best_model.keras"
    # data
    max_samples: int | None = None
    upsample_ratio: float = 0.5
    val_split: float = 0.2
    max_duration: float = 60.0
    max_chunks_per_file: int = 3
    num_workers: int = -1                  # -1: min(8, cores)
    reservoir_size: int = 512
    cache_dir: str | None = None           # decoded-audio cache folder (shared by runs); None: memory only
    cache_memory_mb: float = 1024.0        # decoded audio kept in memory (all processes together; 0: off)
    # augmentation
    mixup_alpha: float = 0.2
    mixup_probability: float = 0.25
    spec_augment: bool = True
    freq_mask_max: int = 8
    time_mask_max: int = 25
    # optimisation
    optimizer: str = "adam"
    weight_decay: float = 0.0
    loss: str = "auto"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    class_weights: bool = True
    mixed_precision: bool = False
    batch_size: int = 32
    epochs: int = 50
    learning_rate: float = 0.001
    patience: int = 10
    steps_per_epoch: int | None = None     # None: ceil(training files / batch size)
    seed: int = 42
    resume: bool = False
    force: bool = False                    # replace an existing model and its files (else refused)
    qat: bool = False
    linear_probe: bool = False
    bn_recalibration_batches: int = 16
    progress: bool = True
    #: the model's frontend and architecture options (``MODEL_OPTIONS``); its classes are unset
    audio: AudioModelConfig = field(default_factory=AudioModelConfig)

    def __init__(self, data_path_train: str, *, audio: AudioModelConfig | None = None, **options):
        """``options`` as the flags name them; the model's (``MODEL_OPTIONS``) go into ``audio`` (over the
        ``AudioModelConfig`` given, else over its defaults)."""
        model = {k: options.pop(k) for k in [k for k in options if k in MODEL_OPTIONS]}
        own = {f.name: f.default for f in fields(TrainConfig) if f.name not in ("data_path_train", "audio")}
        unknown = sorted(set(options) - set(own))
        if unknown:
            raise TypeError(f"TrainConfig got unexpected options {unknown}")
        object.__setattr__(self, "data_path_train", data_path_train)
        for name, default in own.items():
            object.__setattr__(self, name, options.get(name, default))
        self._check(model.get("chunk_duration", 1), model.get("sample_rate", 1))
        object.__setattr__(self, "audio", (audio.replace(**model) if model else audio) if audio is not None
                           else AudioModelConfig(**model))

    def _check(self, chunk_duration: float, sample_rate: int) -> None:
        if self.num_workers < 0:
            object.__setattr__(self, "num_workers", _default_workers())
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"Unknown optimizer '{self.optimizer}'. Available: {list(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"Unknown loss '{self.loss}'. Available: {list(LOSSES)}")
        if self.resume and self.force:
            raise ConfigError("--resume continues the checkpoint's training and --force replaces it: pass one")
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"--val-split must be in [0, 1), got {self.val_split}")
        if not self.upsample_ratio >= 0:
            raise ConfigError(f"--upsample-ratio must be >= 0, got {self.upsample_ratio}")
        if self.patience <= 0 or self.max_duration <= 0 or chunk_duration <= 0 or sample_rate <= 0:
            raise ConfigError("--patience, --max-duration, --chunk-duration and --sample-rate must be positive")
        if self.qat and self.linear_probe:
            raise ConfigError("--qat and --linear-probe are separate steps: run --linear-probe first, then --qat "
                              "on the probe model")
        if not str(self.checkpoint_path).endswith(".keras"):
            raise ConfigError(f"--checkpoint-path must end in .keras, got {self.checkpoint_path}")
        for name in ("batch_size", "epochs", "max_chunks_per_file", "reservoir_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.cache_memory_mb < 0:
            raise ConfigError(f"--cache-memory-mb must be >= 0, got {self.cache_memory_mb}")
        if self.max_samples is not None and self.max_samples <= 0:
            raise ConfigError(f"--max-samples must be positive, got {self.max_samples}")
        for name in ("label_smoothing", "mixup_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.learning_rate <= 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ConfigError("--learning-rate must be positive, --grad-clip and --weight-decay non-negative")

    @property
    def checkpoint(self) -> Path:
        return Path(self.checkpoint_path)

    def to_dict(self) -> dict:
        """Flat: training's own options, then the model's (the names of ``edgeport train``'s flags)."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "audio"}
        return {**own, **{k: getattr(self.audio, k) for k in sorted(MODEL_OPTIONS)}}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A flat dict (``to_dict``, an argparse namespace's ``vars``); keys that are no option are left out."""
        known = {f.name for f in fields(cls)} - {"audio"} | MODEL_OPTIONS
        return cls(**{k: v for k, v in d.items() if k in known})

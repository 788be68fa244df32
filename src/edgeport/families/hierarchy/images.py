"""Image input of the species model: files and folders -> ``(N, 3, S, S)`` float32, the way a server does it.

Preprocessing (recorded in ``onnx-metadata.json``): convert to RGB (RGBA is composited on white, grayscale
and palette images are expanded), resize the shorter side to ``resize`` (bilinear), centre crop ``size``,
scale to [0, 1], subtract ``mean`` and divide by ``std`` per channel (ImageNet's by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, DataError, MissingDependencyError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Images smaller than this on either side are refused: nothing a resize makes of them is a photo.
MIN_SIDE = 8


@dataclass(frozen=True)
class Preprocessing:
    size: int = 224
    resize: int | None = None  # shorter side before the centre crop; None = size (no crop margin)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "RGB"
    layout: str = "NCHW"
    interpolation: str = "bilinear"
    scale: float = 1.0 / 255.0
    steps: tuple[str, ...] = field(default=("convert RGB (RGBA over white)", "resize shorter side (bilinear)",
                                            "centre crop", "x / 255", "(x - mean) / std"))

    def __post_init__(self) -> None:
        if int(self.size) < MIN_SIDE:
            raise ConfigError(f"--image-size must be >= {MIN_SIDE}, got {self.size}")
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) != 3:
                raise ConfigError(f"--{name} takes 3 values (R G B), got {list(v)}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"--std values must be > 0, got {list(self.std)}")

    @property
    def resize_to(self) -> int:
        return int(self.resize or self.size)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["resize"] = self.resize_to
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        keys = ("size", "resize", "mean", "std")
        return cls(**{k: (tuple(d[k]) if k in ("mean", "std") else d[k]) for k in keys if k in d})

    def normalise(self, rgb_uint8: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 (already ``size`` x ``size``) -> ``(3, H, W)`` float32."""
        x = rgb_uint8.astype(np.float32) * np.float32(self.scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError("Pillow", "Reading images", None) from None
    return Image


def load_image(path: Path, pre: Preprocessing) -> np.ndarray:
    """One image file -> ``(3, size, size)`` float32. Corrupt or tiny files raise ``DataError`` naming the file."""
    Image = _pil()
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im).convert("RGB")
            else:
                im = im.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure means the same thing to the user
        raise DataError(f"{path} is not a readable image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "pass JPEG or PNG files") from None
    w, h = im.size
    if min(w, h) < MIN_SIDE:
        raise DataError(f"{path} is {w}x{h} pixels; images need at least {MIN_SIDE} pixels on each side")
    r = pre.resize_to
    scale = r / min(w, h)
    nw, nh = max(r, round(w * scale)), max(r, round(h * scale))
    im = im.resize((nw, nh), Image.BILINEAR)
    s = int(pre.size)
    left, top = (nw - s) // 2, (nh - s) // 2
    im = im.crop((left, top, left + s, top + s))
    return pre.normalise(np.asarray(im, dtype=np.uint8))


def list_images(paths, *, what: str = "images") -> list[Path]:
    """Files and folders (searched recursively, sorted) -> image files. Refuses an empty result."""
    out: list[Path] = []
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{what}: {p} does not exist")
    if not out:
        raise DataError(f"{what}: no JPEG or PNG files in {[str(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]}")
    return out


def load_images(files, pre: Preprocessing) -> np.ndarray:
    return np.stack([load_image(f, pre) for f in files]).astype(np.float32)


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    species: str | None
    disease: str | None


def labelled_images(root: Path, class_names: list[str], disease_names: dict[str, list[str]]) -> list[LabelledImage]:
    """Images under ``root``; labels from ``root/<species>/<disease>/file`` when those names are known."""
    root = Path(root)
    out = []
    for f in list_images(root, what=f"--data-path-train {root}"):
        parts = f.relative_to(root).parts
        sp = parts[0] if len(parts) >= 2 and parts[0] in class_names else None
        dz = parts[1] if sp is not None and len(parts) >= 3 and parts[1] in disease_names.get(sp, []) else None
        out.append(LabelledImage(f, sp, dz))
    return out


def split_held_out(items: list, every: int = 5) -> tuple[list, list]:
    """Deterministic split: every ``every``-th item (by sorted path) is held out for validation."""
    held = [x for i, x in enumerate(items) if i % every == every - 1]
    rest = [x for i, x in enumerate(items) if i % every != every - 1]
    return rest, held

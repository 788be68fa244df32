"""Synthetic plant photos for the demo and tests: a leaf per species (colour, vein angle and frequency, shape),
a lesion pattern per disease (spot colour, size and count; the first disease of each species is clean), and
images of another kind for the OOD check (flat colours, gradients, noise, text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LESION_COLOURS = np.array([[120, 60, 20], [230, 210, 40], [20, 20, 20], [240, 240, 240], [200, 40, 160],
                           [90, 40, 120]], np.float32)


def species_names(n: int) -> list[str]:
    base = ["tomato", "acorn-squash", "basil", "maple", "rose", "fern", "oak", "wheat", "grape", "pepper"]
    return [base[i] if i < len(base) else f"plant-{i:03d}" for i in range(n)]


def disease_lists(class_names: list[str], counts: list[int]) -> dict[str, list[str]]:
    names = ["healthy", "leaf-spot", "blight", "mildew", "rust", "mosaic"]
    return {s: [names[j] if j < len(names) else f"disease-{j}" for j in range(k)] for s, k in zip(class_names, counts, strict=True)}


def leaf_image(species: int, disease: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``(size, size, 3)`` uint8: species ``species`` with disease ``disease`` (0 = no lesions)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    hue = (species * 0.618) % 1.0
    leaf = np.array([60 + 120 * hue, 110 + 100 * ((species * 0.37) % 1.0), 40 + 90 * ((species * 0.21) % 1.0)], np.float32)
    angle = np.pi * ((species * 0.29) % 1.0) + rng.normal(0, 0.05)
    freq = 3 + (species % 4) * 2
    cx, cy = 0.5 + rng.normal(0, 0.04), 0.5 + rng.normal(0, 0.04)
    ax, ay = 0.42 - 0.06 * (species % 3), 0.30 + 0.05 * (species % 2)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    inside = (u / ax) ** 2 + (v / ay) ** 2 <= 1.0
    veins = 0.75 + 0.25 * np.cos(2 * np.pi * freq * u + 0.5)
    bg = np.array([200, 190, 170], np.float32) + rng.normal(0, 8, 3)
    img = np.where(inside[..., None], leaf * veins[..., None], bg)
    if disease > 0:
        colour = LESION_COLOURS[(disease - 1) % len(LESION_COLOURS)]
        n_spots = 2 + 2 * disease
        radius = (0.06 + 0.02 * ((disease - 1) % 3)) * (1 + rng.uniform(-0.2, 0.2))
        for _ in range(n_spots):
            r, t = np.sqrt(rng.uniform(0, 0.7)), rng.uniform(0, 2 * np.pi)
            su, sv = r * ax * np.cos(t), r * ay * np.sin(t)
            sx = cx + su * np.cos(angle) - sv * np.sin(angle)
            sy = cy + su * np.sin(angle) + sv * np.cos(angle)
            spot = ((xx - sx) ** 2 + (yy - sy) ** 2 <= radius**2) & inside
            img[spot] = colour
    img = img + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def other_image(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Not a plant: 0 flat colour, 1 gradient, 2 noise, 3 text on a plain background."""
    kind = kind % 4
    if kind == 0:
        img = np.ones((size, size, 3), np.float32) * rng.uniform(0, 255, 3)
    elif kind == 1:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = (xx * np.cos(rng.uniform(0, 6.3)) + yy * np.sin(rng.uniform(0, 6.3)))[..., None]
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        img = a * (1 - t) + b * t
    elif kind == 2:
        img = rng.uniform(0, 255, (size, size, 3))
    else:
        from PIL import Image, ImageDraw

        im = Image.new("RGB", (size, size), tuple(int(c) for c in rng.uniform(150, 255, 3)))
        d = ImageDraw.Draw(im)
        for row in range(0, size, max(6, size // 6)):
            d.text((1, row), "".join(rng.choice(list("ABCDEFGHJKLMNOPQRSTUVWXYZ0123456789"), 12)), fill=(0, 0, 0))
        img = np.asarray(im, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_plant_folder(root: Path, class_names: list[str], disease_names: dict[str, list[str]], *, per_class: int,
                       size: int, seed: int = 0) -> int:
    """``root/<species>/<disease>/NNN.png``, ``per_class`` images per (species, disease). Returns the count."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = 0
    for i, sp in enumerate(class_names):
        for j, dz in enumerate(disease_names[sp]):
            d = Path(root) / sp / dz
            d.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                Image.fromarray(leaf_image(i, j, size, rng)).save(d / f"{k:03d}.png")
                n += 1
    return n


def write_other_folder(root: Path, n: int, *, size: int, seed: int = 99) -> int:
    """``n`` images of things that are not plants under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.fromarray(other_image(k, size, rng)).save(Path(root) / f"other_{k:03d}.png")
    return n


def plant_arrays(class_names, disease_names, *, per_class: int, size: int, seed: int = 0):
    """In memory: uint8 images ``(N, S, S, 3)``, species ids, disease ids."""
    rng = np.random.default_rng(seed)
    imgs, sp, dz = [], [], []
    for i, s in enumerate(class_names):
        for j in range(len(disease_names[s])):
            for _ in range(per_class):
                imgs.append(leaf_image(i, j, size, rng))
                sp.append(i)
                dz.append(j)
    return np.stack(imgs), np.asarray(sp), np.asarray(dz)

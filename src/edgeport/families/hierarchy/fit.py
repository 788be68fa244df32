"""A short fit on synthetic plant photos, so that demo and tests have a model whose predictions mean something."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgeport.families.hierarchy.images import Preprocessing
from edgeport.families.hierarchy.synthetic import (
    disease_lists,
    plant_arrays,
    species_names,
)

log = logging.getLogger(__name__)


def _normalise(images_uint8: np.ndarray, pre: Preprocessing) -> np.ndarray:
    return np.stack([pre.normalise(im) for im in images_uint8]).astype(np.float32)


def fit(model, images: np.ndarray, species: np.ndarray, diseases: np.ndarray, class_names: list[str], *,
        steps: int = 150, batch: int = 32, lr: float = 3e-3, seed: int = 0) -> dict:
    """Adam on species cross-entropy + the true species' disease-head cross-entropy. Returns training accuracy."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is several times faster on a shared CPU
    try:
        return _fit(torch, model, images, species, diseases, class_names, steps, batch, lr, rng)
    finally:
        torch.set_num_threads(threads)


def _fit(torch, model, images, species, diseases, class_names, steps, batch, lr, rng) -> dict:
    x_all = torch.from_numpy(images)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(int(steps)):
        idx = rng.integers(0, len(images), min(batch, len(images)))
        x = x_all[idx]
        sp, dz = torch.from_numpy(species[idx]), torch.from_numpy(diseases[idx])
        logits, emb = model(x)
        loss = torch.nn.functional.cross_entropy(logits, sp)
        for s in sp.unique().tolist():
            rows = sp == s
            head = model.disease_heads[class_names[s]]
            loss = loss + torch.nn.functional.cross_entropy(head(emb[rows]), dz[rows]) * rows.float().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits, emb = model(x_all)
        sp_ok = (logits.argmax(1).numpy() == species).mean()
        dz_pred = np.array([int(model.disease_heads[class_names[s]](emb[i:i + 1]).argmax(1)) for i, s in enumerate(species)])
    return {"species_top1": float(sp_ok), "disease_top1": float((dz_pred == diseases).mean()), "steps": int(steps)}


def make_hierarchy_checkpoint(path: Path, *, n_species: int = 4, disease_counts: list[int] | None = None,
                              image_size: int = 32, backbone: str = "cnn", width: int = 16, per_class: int = 16,
                              steps: int = 150, seed: int = 0) -> dict:
    """Fit a model on synthetic photos and save ``{model_config, model_state_dict, class_names, disease_names}``."""
    import torch

    from edgeport.families.hierarchy.model import build_model

    names = species_names(n_species)
    counts = disease_counts or [1 + (i % 3) for i in range(n_species)]
    diseases = disease_lists(names, counts)
    cfg = {"backbone": backbone, "width": width, "image_size": image_size, "class_names": names,
           "disease_names": diseases}
    torch.manual_seed(seed)
    model = build_model(**cfg)
    pre = Preprocessing(size=image_size)
    imgs, sp, dz = plant_arrays(names, diseases, per_class=per_class, size=image_size, seed=seed + 1)
    stats = fit(model, _normalise(imgs, pre), sp, dz, names, steps=steps, seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import io

    from edgeport.fileio import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"model_config": cfg, "model_state_dict": model.state_dict(), "class_names": names,
                "disease_names": diseases, "training": stats}, buf)
    atomic_write_bytes(path, buf.getvalue())
    log.info("hierarchy checkpoint %s: %s", path, stats)
    return stats

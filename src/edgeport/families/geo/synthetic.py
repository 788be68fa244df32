"""A non-trivial geo checkpoint without real data: invented species range maps and a short fit.

Each synthetic species has one to three Gaussian-like blobs on the sphere (von Mises-Fisher shaped, flat-topped core) and a
peak prevalence; residents shift a little with the season, migrants move their range between a breeding
and a wintering latitude over the year (and are scarcer off season), widespread species cover a hemisphere,
rare ones are small and scarce. The model is fit with BCE on presence labels drawn from these maps at random
(lat, lon, week) points; the result passes :func:`is_non_trivial` (SPEC §5) and is deterministic per seed.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeport.errors import ConfigError
from edgeport.families.geo.family import LICENSE_FILENAME
from edgeport.families.geo.labels import (
    LABELS_FILENAME,
    Label,
    write_labels,
)
from edgeport.fileio import atomic_write_bytes

logger = logging.getLogger(__name__)

LICENSE_TEXT = """\
Model weights licence
=====================

The geo model weights in this folder are SYNTHETIC: edgeport fitted them (seed {seed}) to invented species
range maps. They contain no real observation data, and the species in labels.txt do not exist.

These weights are licensed under the Creative Commons Attribution-ShareAlike 4.0 International licence
(CC BY-SA 4.0): https://creativecommons.org/licenses/by-sa/4.0/
"""

KINDS = ("resident", "migrant", "widespread", "rare")
KIND_SHARES = (0.45, 0.25, 0.15, 0.15)
MAX_BLOBS = 3
CORE_PLATEAU = 1.3  # ranges have a flat core where presence is at its peak
WEEKS = 48

# Non-triviality (SPEC §5): probabilities span at least 0.01..0.9 and the top species change with place and week.
LOW_PROB = 0.01
HIGH_PROB = 0.9

ENV_LOSS_WEIGHT = 0.1
BANK_POINTS = 65536  # at most this many precomputed training points
BANK_FLOATS = 2**25  # and at most this many stored probabilities (128 MB)


@dataclass(frozen=True)
class SpeciesMaps:
    """Parameters of the invented range maps, one row per species (numpy arrays)."""

    kind: np.ndarray  # (S,) index into KINDS
    peak: np.ndarray  # (S,) prevalence at the range centre in season
    lat: np.ndarray  # (S, B) blob centre latitude (degrees; migrants: mean of breeding/wintering)
    lon: np.ndarray  # (S, B) blob centre longitude (degrees)
    kappa: np.ndarray  # (S, B) concentration (1 / radius^2, radians); 0 = unused blob
    lat_swing: np.ndarray  # (S,) seasonal latitude swing amplitude (degrees)
    season_depth: np.ndarray  # (S,) how much prevalence drops off season (0..1)
    peak_week: np.ndarray  # (S,) week of maximum presence / northernmost position

    @property
    def n_species(self) -> int:
        return int(self.peak.shape[0])

    @classmethod
    def generate(cls, n_species: int, seed: int = 0) -> SpeciesMaps:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(101,)))
        counts = np.floor(np.asarray(KIND_SHARES) * n_species).astype(int)
        counts[0] += n_species - counts.sum()
        kind = rng.permutation(np.repeat(np.arange(len(KINDS)), counts))
        s = n_species
        # Blob centres uniform on the sphere, latitudes kept off the poles so swings stay in range.
        lat = np.degrees(np.arcsin(rng.uniform(-0.97, 0.97, (s, MAX_BLOBS))))
        lon = rng.uniform(-180.0, 180.0, (s, MAX_BLOBS))
        n_blobs = rng.integers(1, MAX_BLOBS + 1, s)
        radius_deg = np.empty(s)
        peak = np.empty(s)
        lat_swing = np.zeros(s)
        season_depth = np.empty(s)
        for k, name in enumerate(KINDS):
            m = kind == k
            n = int(m.sum())
            if name == "resident":
                radius_deg[m] = rng.uniform(12, 30, n)
                peak[m] = rng.uniform(0.6, 0.995, n)
                lat_swing[m] = rng.uniform(0, 4, n)
                season_depth[m] = rng.uniform(0.0, 0.3, n)
            elif name == "migrant":
                radius_deg[m] = rng.uniform(12, 25, n)
                peak[m] = rng.uniform(0.7, 0.995, n)
                lat_swing[m] = rng.uniform(15, 35, n)
                season_depth[m] = rng.uniform(0.3, 0.7, n)
                n_blobs[m] = 1
            elif name == "widespread":
                radius_deg[m] = rng.uniform(35, 70, n)
                peak[m] = rng.uniform(0.6, 0.99, n)
                season_depth[m] = rng.uniform(0.0, 0.2, n)
            else:  # rare
                radius_deg[m] = rng.uniform(8, 15, n)
                peak[m] = rng.uniform(0.1, 0.4, n)
                season_depth[m] = rng.uniform(0.0, 0.5, n)
                n_blobs[m] = 1
        # Migrants: keep breeding/wintering latitudes inside (-80, 80).
        mig = kind == KINDS.index("migrant")
        lat[mig] = np.clip(lat[mig], -75 + lat_swing[mig, None], 75 - lat_swing[mig, None])
        kappa = np.repeat((1.0 / np.radians(radius_deg) ** 2)[:, None], MAX_BLOBS, axis=1)
        kappa *= rng.uniform(0.7, 1.4, (s, MAX_BLOBS))
        kappa[np.arange(MAX_BLOBS)[None, :] >= n_blobs[:, None]] = 0.0
        peak_week = rng.uniform(1, WEEKS + 1, s)
        return cls(kind, peak, lat, lon, kappa, lat_swing, season_depth, peak_week)

    def probabilities(self, lat, lon, week):
        """True presence probability, (N,) degrees / week tensors -> (N, S) torch tensor."""
        import torch

        t = {f: torch.as_tensor(getattr(self, f), dtype=torch.float32)
             for f in ("peak", "lat", "lon", "kappa", "lat_swing", "season_depth", "peak_week")}
        phase = 2 * math.pi * (week[:, None] - t["peak_week"][None, :]) / WEEKS  # (N, S)
        season = torch.cos(phase)
        c_lat = t["lat"][None] + (t["lat_swing"][None, :] * season)[..., None]  # (N, S, B)
        p_lat = torch.deg2rad(lat)[:, None, None]
        c_lat = torch.deg2rad(c_lat)
        dlon = torch.deg2rad(lon[:, None, None] - t["lon"][None])
        cos_d = torch.sin(p_lat) * torch.sin(c_lat) + torch.cos(p_lat) * torch.cos(c_lat) * torch.cos(dlon)
        used = t["kappa"][None] > 0
        shape = torch.where(used, torch.exp(t["kappa"][None] * (cos_d - 1.0)), torch.zeros(()))
        spatial = (CORE_PLATEAU * shape.amax(dim=-1)).clamp(max=1.0)  # flat-topped core: occupancy saturates
        seasonal = 1.0 - t["season_depth"][None, :] * 0.5 * (1.0 - season)
        return (t["peak"][None, :] * seasonal * spatial).clamp(0.0, 1.0)


def env_features(lat, lon, week, n_features: int, seed: int = 0):
    """Invented environment covariates (smooth fields on the sphere, some seasonal), (N,) -> (N, n_features).

    They give the auxiliary env head something real to fit; think of them as temperature-, rain- or
    elevation-like layers, scaled to roughly [-1, 1].
    """
    import torch

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(202,)))
    direction = torch.as_tensor(rng.normal(size=(n_features, 3)), dtype=torch.float32)
    direction = direction / direction.norm(dim=1, keepdim=True) * torch.as_tensor(
        rng.uniform(1.0, 3.0, (n_features, 1)), dtype=torch.float32)
    phase = torch.as_tensor(rng.uniform(0, 2 * math.pi, n_features), dtype=torch.float32)
    seasonal = torch.as_tensor(rng.uniform(0.0, 0.5, n_features), dtype=torch.float32)
    la, lo = torch.deg2rad(lat), torch.deg2rad(lon)
    xyz = torch.stack([torch.cos(la) * torch.cos(lo), torch.cos(la) * torch.sin(lo), torch.sin(la)], dim=1)
    season = torch.cos(2 * math.pi * (week - 1) / WEEKS)[:, None] * torch.sin(la)[:, None]
    return 0.7 * torch.sin(xyz @ direction.T + phase) + seasonal * season


_GENUS_HEADS = ("Synth", "Fict", "Simul", "Imagin", "Pseud", "Artif", "Mock", "Phant", "Virt", "Ersatz")
_GENUS_TAILS = ("ornis", "ospiza", "ocincla", "othraupis", "icola", "opsar", "aptera", "otyrannus", "oscopus", "ilus")
_EPITHETS = {
    "resident": ("borealis", "australis", "orientalis", "occidentalis", "montana", "sylvestris", "aequatorialis"),
    "migrant": ("migrans", "viator", "peregrina", "vagans"),
    "widespread": ("vulgaris", "communis", "ubiquita"),
    "rare": ("rara", "occulta", "insularis"),
}
_GROUPS = ("Mock-warbler", "Synth-finch", "Faux-thrush", "Sim-sparrow", "Proto-wren", "Pseudo-tit", "Mock-lark",
           "Synth-swift", "Faux-tern", "Sim-plover")


def _region(lat: float, lon: float) -> str:
    ns = "Northern" if lat > 23 else "Southern" if lat < -23 else "Tropical"
    ew = "Eastern" if lon > 0 else "Western"
    return f"{ew} {ns}" if abs(lat) > 23 else ns


def synthetic_labels(maps: SpeciesMaps) -> list[Label]:
    """Invented, clearly synthetic (code, scientific, common) rows, unique per species."""
    rows, seen = [], set()
    for i in range(maps.n_species):
        kind = KINDS[int(maps.kind[i])]
        genus = _GENUS_HEADS[i % len(_GENUS_HEADS)] + _GENUS_TAILS[(i // len(_GENUS_HEADS)) % len(_GENUS_TAILS)]
        epithets = _EPITHETS[kind]
        epithet = epithets[(i // 100) % len(epithets)]
        sci = f"{genus} {epithet}"
        n = 2
        while sci in seen:
            sci, n = f"{genus} {epithet}{'i' * (n - 1)}", n + 1
        seen.add(sci)
        adjective = {"migrant": "Wandering", "widespread": "Common", "rare": "Elusive"}.get(
            kind, _region(float(maps.lat[i, 0]), float(maps.lon[i, 0]))
        )
        common = f"{adjective} {_GROUPS[i % len(_GROUPS)]} {i + 1}"
        rows.append(Label(f"sp{i + 1:04d}", sci, common))
    return rows


def evaluation_grid(lat_step: float = 15.0, lon_step: float = 15.0, week_step: int = 4):
    """(lat, lon, week) grid used for non-triviality: all lats incl. poles, lons -180..<180, weeks 1..48."""
    lats = np.arange(-90.0, 90.0 + 1e-9, lat_step)
    lons = np.arange(-180.0, 180.0 - 1e-9, lon_step)
    weeks = np.unique(np.r_[np.arange(1, WEEKS + 1, week_step), WEEKS]).astype(np.float64)
    return lats, lons, weeks


def is_non_trivial(model, *, low: float = LOW_PROB, high: float = HIGH_PROB, batch_size: int = 1024):
    """SPEC §5 check on a lat/lon/week grid -> ``(ok, details)``.

    ok when the smallest probability is <= ``low``, the largest >= ``high``, at every grid week at least two
    different top-1 species occur across locations, and at some location the top-1 changes with the week.
    """
    import torch

    lats, lons, weeks = evaluation_grid()
    la, lo, wk = np.meshgrid(lats, lons, weeks, indexing="ij")  # (L, O, W)
    pts = torch.as_tensor(np.stack([la.ravel(), lo.ravel(), wk.ravel()], 1), dtype=torch.float32)
    was_training = model.training
    model.eval()
    pmin, pmax, top1 = math.inf, -math.inf, []
    try:
        with torch.no_grad():
            for chunk in torch.split(pts, batch_size):
                probs = torch.sigmoid(model(chunk[:, 0], chunk[:, 1], chunk[:, 2])["species_logits"])
                pmin = min(pmin, float(probs.min()))
                pmax = max(pmax, float(probs.max()))
                top1.append(probs.argmax(dim=1))
    finally:
        model.train(was_training)
    top = torch.cat(top1).numpy().reshape(len(lats) * len(lons), len(weeks))  # (locations, weeks)
    per_week = [len(np.unique(top[:, j])) for j in range(top.shape[1])]
    changes = int(sum(len(np.unique(row)) > 1 for row in top))
    details = {
        "prob_min": pmin,
        "prob_max": pmax,
        "distinct_top1": len(np.unique(top)),
        "distinct_top1_per_week_min": int(min(per_week)),
        "locations": int(top.shape[0]),
        "weeks": int(top.shape[1]),
        "locations_top1_changes_with_week": changes,
        "low": low,
        "high": high,
    }
    checks = {
        "span_low": pmin <= low,
        "span_high": pmax >= high,
        "top1_varies_with_location": min(per_week) >= 2,
        "top1_varies_with_week": changes >= 1,
    }
    details["checks"] = checks
    return all(checks.values()), details


def sample_points(n: int, generator):
    """Random training points: half area-uniform on the sphere, half uniform in latitude (covers poles)."""
    import torch

    half = n // 2
    u = torch.rand(half, generator=generator) * 2 - 1
    lat_area = torch.rad2deg(torch.asin(u))
    lat_flat = torch.rand(n - half, generator=generator) * 180 - 90
    lat = torch.cat([lat_area, lat_flat])
    lon = torch.rand(n, generator=generator) * 360 - 180
    week = torch.randint(1, WEEKS + 1, (n,), generator=generator).float()
    return lat, lon, week


def fit_geo_model(model, maps: SpeciesMaps, *, steps: int, seed: int = 0, batch_size: int = 1024,
                  lr: float = 1e-2, progress: bool | None = None) -> float:
    """Fit ``model`` to presence labels drawn from ``maps``; returns the mean BCE of the last 10% of steps.

    A model with an ``env_head`` (the built-in one) also fits :func:`env_features` (MSE, small weight).

    True probabilities are computed once on a bank of random points (the maps are the slow part); each step
    takes a minibatch from the bank and draws fresh Bernoulli presence labels from it.
    """
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    bank_size = int(min(BANK_POINTS, max(4 * batch_size, BANK_FLOATS // maps.n_species)))
    bank_pts = torch.stack(sample_points(bank_size, gen), dim=1)
    bank_p = torch.cat([maps.probabilities(c[:, 0], c[:, 1], c[:, 2]) for c in torch.split(bank_pts, 2048)])
    env_head = getattr(model, "env_head", None)
    n_env = getattr(model, "config", {}).get("n_env_features") if env_head is not None else None
    bank_env = env_features(bank_pts[:, 0], bank_pts[:, 1], bank_pts[:, 2], n_env, seed) if n_env else None
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    # Start each species at its average prevalence: the fit then spends its steps on where, not how common.
    head = getattr(model, "species_out", None)
    if isinstance(head, torch.nn.Linear) and head.bias is not None:
        with torch.no_grad():
            prev = bank_p.mean(0).clamp(1e-4, 0.5)
            head.bias.copy_(torch.log(prev / (1 - prev)))
    model.train()
    tail = max(1, steps // 10)
    losses = []
    disable = None if progress is None else not progress
    for _ in tqdm(range(steps), desc="fit synthetic geo model", disable=disable, leave=False):
        idx = torch.randint(0, bank_size, (batch_size,), generator=gen)
        pts = bank_pts[idx]
        target = torch.bernoulli(bank_p[idx], generator=gen)
        out = model(pts[:, 0], pts[:, 1], pts[:, 2], return_env=bank_env is not None)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out["species_logits"], target)
        total = loss
        if bank_env is not None:
            total = loss + ENV_LOSS_WEIGHT * torch.nn.functional.mse_loss(out["env"], bank_env[idx])
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach().item())
    model.eval()
    return float(np.mean(losses[-tail:]))


def map_fit_error(model, maps: SpeciesMaps, *, n: int = 4096, seed: int = 0) -> dict[str, float]:
    """How well ``model`` reproduces the true maps on fresh random points: mean and max |p_model - p_true|."""
    import torch

    gen = torch.Generator().manual_seed(int(seed) * 7919 + 29)
    lat, lon, week = sample_points(n, gen)
    with torch.no_grad():
        err = (torch.sigmoid(model(lat, lon, week)["species_logits"]) - maps.probabilities(lat, lon, week)).abs()
    return {"mae": float(err.mean()), "max": float(err.max())}


def env_fit_error(model, *, n: int = 4096, seed: int = 0) -> float:
    """Mean absolute error of the env head against :func:`env_features` on fresh random points."""
    import torch

    gen = torch.Generator().manual_seed(int(seed) * 7919 + 31)
    lat, lon, week = sample_points(n, gen)
    with torch.no_grad():
        env = model(lat, lon, week, return_env=True)["env"]
    return float((env - env_features(lat, lon, week, env.shape[1], seed)).abs().mean())


def make_geo_checkpoint(
    path: str | os.PathLike,
    *,
    n_species: int = 200,
    model_scale: float = 0.25,
    steps: int = 600,
    seed: int = 0,
    lr: float = 1e-2,
    labels_path: str | os.PathLike | None = None,
    n_env_features: int = 16,
    batch_size: int = 1024,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Build, fit and save a synthetic geo checkpoint (+ labels.txt and MODEL_LICENSE.txt beside it).

    Returns a summary: params, final_loss, prob_min/prob_max, distinct_top1, non_trivial, map_mae, seconds
    (wall) and cpu_seconds, paths. Defaults (200 species, scale 0.25, 600 steps) take ~18 s of one core.
    """
    import torch

    from edgeport.families.geo.checkpoint import save_checkpoint
    from edgeport.families.geo.model import GeoModel, count_parameters

    if int(n_species) != n_species or n_species < 4:
        raise ConfigError(f"n_species must be an integer >= 4 for a synthetic geo model, got {n_species!r}")
    if int(steps) != steps or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    start, cpu_start = time.perf_counter(), time.process_time()
    path = Path(path)
    maps = SpeciesMaps.generate(int(n_species), seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GeoModel(int(n_species), n_env_features=n_env_features, model_scale=model_scale)
        final_loss = fit_geo_model(model, maps, steps=int(steps), seed=seed, batch_size=batch_size, lr=lr,
                                   progress=progress)
    labels = synthetic_labels(maps)
    save_checkpoint(path, model)
    labels_path = Path(labels_path) if labels_path is not None else path.parent / LABELS_FILENAME
    write_labels(labels_path, labels)
    license_path = path.parent / LICENSE_FILENAME
    atomic_write_bytes(license_path, LICENSE_TEXT.format(seed=seed).encode("utf-8"))
    ok, details = is_non_trivial(model)
    map_error = map_fit_error(model, maps, seed=seed)
    env_error = env_fit_error(model, seed=seed)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    summary = {
        "path": str(path),
        "labels_path": str(labels_path),
        "license_path": str(license_path),
        "n_species": int(n_species),
        "model_scale": float(model_scale),
        "params": count_parameters(model),
        "steps": int(steps),
        "seed": int(seed),
        "final_loss": final_loss,
        "prob_min": details["prob_min"],
        "prob_max": details["prob_max"],
        "distinct_top1": details["distinct_top1"],
        "distinct_top1_per_week_min": details["distinct_top1_per_week_min"],
        "locations_top1_changes_with_week": details["locations_top1_changes_with_week"],
        "map_mae": map_error["mae"],
        "map_max_error": map_error["max"],
        "env_mae": env_error,
        "non_trivial": ok,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }
    if not ok:
        logger.warning("synthetic geo checkpoint %s is trivial by SPEC §5 (%s): try more steps", path,
                       details["checks"])
    logger.debug("synthetic geo checkpoint %s: %s", path, summary)
    return summary

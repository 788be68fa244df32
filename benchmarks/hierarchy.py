"""Species + disease deliverables (seed 002): cold start of 320 per-head files vs the fused model, species +
routed disease latency at batch 1 per precision for the small CNN and Swin-Tiny at 224, sizes.

    PYTHONPATH=src .venv/bin/python benchmarks/hierarchy.py [--quick]   -> benchmarks/results/hierarchy.json

Models are random-init (latency and size do not depend on the weights); every artifact is still exported and
validated by ``export --family hierarchy`` (its verification figures are stored beside the timings).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "hierarchy.json"


def _images(folder: Path, n: int, size: int) -> Path:
    from PIL import Image

    from edgeport.families.hierarchy.synthetic import leaf_image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.fromarray(leaf_image(k % 8, k % 3, size, rng)).save(folder / f"{k:03d}.png")
    return folder


def _export(model, names, diseases, size, imgs, outdir, formats, calib):
    from edgeport.exporters import ExportOptions
    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.deliverables import (
        HierarchyConfig,
        export_deliverables,
    )

    src = load_hierarchy(model=model, class_names=names, disease_names=diseases, image_size=size)
    t0 = time.perf_counter()
    res = export_deliverables(src, HierarchyConfig(formats=formats, outdir=outdir, data_path_train=imgs,
                                                   latency_repeats=30,
                                                   options=ExportOptions(calibration_samples=calib)))
    return src, res, round(time.perf_counter() - t0, 1)


def _summary(res) -> dict:
    v = res.verification
    return {
        "all_passed": res.passed,
        "artifacts": {a.format: {"status": a.status, "size_bytes": a.size_bytes, "error": a.error,
                                 **({k: v2 for k, v2 in a.comparison.headline().items()} if a.comparison else {})}
                      for a in res.artifacts},
        "latency_batch1_species_plus_routed_disease": v["latency_batch1"],
        "sizes": v["sizes"], "parameters": v["parameters"], "checks": v["checks"],
        "ood_onnx_vs_numpy": v["ood_onnx_vs_numpy"],
    }


def cold_start(outdir: Path, repeats: int = 3) -> dict:
    """Seconds to open every per-head file vs the one fused file, in ONNX Runtime (FP32 and INT8)."""
    import json

    from edgeport.runtimes.onnxruntime import OrtRunner

    lst = json.loads((outdir / "disease-heads-list.json").read_text())
    out = {}
    for fmt in lst["fused_files"]:
        files = [outdir / e["head_files"][fmt] for e in lst["species"]]
        per, fused = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            runners = [OrtRunner.open(f) for f in files]
            per.append(time.perf_counter() - t0)
            del runners
            t0 = time.perf_counter()
            r = OrtRunner.open(outdir / lst["fused_files"][fmt])
            fused.append(time.perf_counter() - t0)
            del r
        p, f = float(np.median(per)), float(np.median(fused))
        out[fmt] = {"heads": len(files), "per_head_files_s": round(p, 4), "fused_s": round(f, 4),
                    "fused_over_per_head": round(f / p, 4),
                    "per_head_total_bytes": sum(x.stat().st_size for x in files),
                    "fused_bytes": (outdir / lst["fused_files"][fmt]).stat().st_size}
    return out


def main() -> int:
    import torch

    from edgeport.families.hierarchy.model import build_model, count_parameters
    from edgeport.families.hierarchy.synthetic import disease_lists, species_names

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip Swin-Tiny")
    ap.add_argument("--heads", type=int, default=320)
    args = ap.parse_args()
    torch.manual_seed(0)
    load_start = os.getloadavg()
    result: dict = {"command": shlex.join(["python", "benchmarks/hierarchy.py", *sys.argv[1:]]),
                    "cpu_count": os.cpu_count(), "load_avg_start": load_start}
    all4 = ("onnx", "onnx_fp16", "onnx_int8", "onnx_int8_static")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 1. the seed's head count: 320 species, 768-dim embedding (small CNN width 192), 1-5 diseases each
        names = species_names(args.heads)
        diseases = disease_lists(names, [1 + i % 5 for i in range(args.heads)])
        model = build_model(backbone="cnn", class_names=names, disease_names=diseases, width=192, image_size=32).eval()
        imgs32 = _images(tmp / "img32", 40, 32)
        _, res, secs = _export(model, names, diseases, 32, imgs32, tmp / "heads320", ("onnx", "onnx_int8"), 32)
        result["cold_start_320_heads"] = {"export_seconds": secs, "all_passed": res.passed,
                                          **cold_start(tmp / "heads320")}
        # 2. species + routed disease latency per precision at 224
        imgs224 = _images(tmp / "img224", 40, 224)
        n8 = species_names(8)
        d8 = disease_lists(n8, [1 + i % 4 for i in range(8)])
        for backbone in ("cnn",) if args.quick else ("cnn", "swin_tiny"):
            m = build_model(backbone=backbone, class_names=n8, disease_names=d8, image_size=224).eval()
            _, res, secs = _export(m, n8, d8, 224, imgs224, tmp / backbone, all4, 16)
            result[f"{backbone}_224"] = {"parameters": count_parameters(m), "export_seconds": secs, **_summary(res)}
    result["load_avg_end"] = os.getloadavg()
    from edgeport.fileio import atomic_write_json

    atomic_write_json(OUT, result)
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())

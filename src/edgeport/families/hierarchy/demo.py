"""The demo's species + disease part: fit a small CNN on synthetic leaves, export the deliverables folder
(every ONNX precision), print the validation and verification tables and a few predictions."""

from __future__ import annotations

import time
from pathlib import Path

DEMO_DISEASES = [1, 2, 3, 2, 1]
DEMO_SIZE = 32


def run_demo(out: Path, *, seed: int = 0) -> int:
    from edgeport.families.hierarchy.checkpoint import load_hierarchy
    from edgeport.families.hierarchy.deliverables import (
        HierarchyConfig,
        export_deliverables,
        verification_table,
    )
    from edgeport.families.hierarchy.fit import make_hierarchy_checkpoint
    from edgeport.families.hierarchy.predict import Predictor, format_predictions
    from edgeport.families.hierarchy.synthetic import (
        write_other_folder,
        write_plant_folder,
    )
    from edgeport.reporting import format_table

    base = Path(out) / "images"
    t0 = time.perf_counter()
    print(f"== species + disease model: fitting a small CNN on synthetic leaves ({len(DEMO_DISEASES)} species) ==")
    stats = make_hierarchy_checkpoint(base / "checkpoint" / "hierarchy.pt", n_species=len(DEMO_DISEASES),
                                      disease_counts=DEMO_DISEASES, image_size=DEMO_SIZE, per_class=16, steps=200,
                                      seed=seed)
    print(f"   training species top-1 {stats['species_top1']:.3f}, disease top-1 {stats['disease_top1']:.3f} "
          f"in {time.perf_counter() - t0:.0f} s")
    src = load_hierarchy(base / "checkpoint" / "hierarchy.pt")
    write_plant_folder(base / "data", src.class_names, src.disease_names, per_class=8, size=DEMO_SIZE, seed=seed + 3)
    print("== species + disease model: the deliverables folder (ONNX FP32 / FP16 / INT8 dynamic / INT8 static) ==")
    res = export_deliverables(src, HierarchyConfig(formats=("all",), outdir=base / "deliverables",
                                                   data_path_train=base / "data", force=True,
                                                   command_line="edgeport demo"))
    print(format_table(res.artifacts))
    print()
    print(verification_table(res.verification))
    write_other_folder(base / "not-plants", 2, size=DEMO_SIZE)
    pred = Predictor(base / "deliverables")
    samples = [next((base / "data" / s).rglob("*.png")) for s in src.class_names[:3]]
    print(f"\n== edgeport predict --model-dir {base / 'deliverables'} ({pred.precision}, fused heads) ==")
    print(format_predictions(pred.predict([*samples, base / "not-plants"])))
    return res.exit_code

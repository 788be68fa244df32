"""``edgeport demo``: the main job on an embedded default, in minutes on 2 CPU cores.

Three parts, each on data it makes itself (nothing is downloaded); the geo and audio parts are
``edgeport.demo`` (``geo_demo``, ``audio_demo``), the images part ``families/hierarchy/demo.py``:

- geo: fits a non-trivial geo checkpoint to synthetic species range maps and exports it to every format,
  printing the validation table;
- audio: synthesises a labelled bird-call dataset (6 species + noise), trains a small DS-CNN on it and
  reports its ROC-AUC beside a mean-spectrum baseline; then exports the trained model to
  ``edgeport.demo.AUDIO_FORMATS`` (``edgeport export X.keras --data-path-train D``: calibrated and validated on the
  training folder) and evaluates the Keras model and every artifact on the held-out test folder
  (``edgeport evaluate``), printing ROC-AUC and cmAP of each beside the Keras model's;
- images: a species + disease small CNN fitted on synthetic leaves, exported as the deliverables folder
  (``families/hierarchy/demo.py``), with a few ``edgeport predict`` rows.

Exit code 1 when an artifact of either part misses its gate (or an audio artifact cannot be evaluated).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

PARTS = ("geo", "audio", "images")
HELP = "run the main job on built-in synthetic data: build reference models, export and validate every format"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outdir", default="demo_out", help="where the demo writes everything")
    p.add_argument("--force", action="store_true", help="replace an earlier demo in --outdir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--geo-species", type=int, default=200, help="species of the demo geo model")
    p.add_argument("--geo-scale", type=float, default=0.25, help="model_scale of the demo geo model")
    p.add_argument("--geo-steps", type=int, default=600, help="fit steps on the synthetic range maps")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")


def run(args: argparse.Namespace) -> int:
    from edgeport.errors import ConfigError

    out = Path(args.outdir)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out} is not empty; pass --force to replace the earlier demo or choose another --outdir")
    t_start = time.perf_counter()
    code = 0
    if "geo" in args.parts:
        from edgeport.demo import geo_demo

        code = max(code, geo_demo(out, species=args.geo_species, scale=args.geo_scale, steps=args.geo_steps,
                                  seed=args.seed).exit_code)
    if "audio" in args.parts:
        from edgeport.demo import audio_demo

        code = max(code, audio_demo(out, seed=args.seed).exit_code)
    if "images" in args.parts:
        from edgeport.families.hierarchy.demo import run_demo

        code = max(code, run_demo(out, seed=args.seed))
    code = max(code, _predict(args.parts, out))
    report = _report(args.parts, out)
    verdict = "every artifact passed its gate" if code == 0 else "an artifact missed its gate (exit code 1)"
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s; {verdict}; everything is under {out}/")
    if report is not None:
        print(f"one report for every export: {report}")
    return code


#: the export folder of each demo part
EXPORT_FOLDERS = {"geo": ("geo", "exports"), "audio": ("audio", "exports"), "images": ("images", "deliverables")}


def _report(parts, out: Path) -> Path | None:
    """One report.html for every export folder the demo wrote."""
    from edgeport.reporting.folder import write_folder_report

    folders = [out.joinpath(*EXPORT_FOLDERS[p]) for p in EXPORT_FOLDERS if p in parts]
    folders = [f for f in folders if (f / "manifest.json").is_file()]
    return write_folder_report(*folders, out=out / "report.html", force=True) if folders else None


#: the demo location of ``edgeport predict`` (lat, lon, week)
DEMO_PLACE = ("42.4", "-76.5", "20")


def _predict(parts, out: Path) -> int:
    """``edgeport predict`` on one held-out demo recording and one demo location; prints the first lines."""
    from edgeport.cli.main import main

    runs = []
    if "audio" in parts:
        art = out / "audio" / "exports" / "demo_dscnn_quantized.tflite"  # full INT8, config from the manifest
        rec = next(p for p in sorted((out / "audio" / "data" / "test").glob("*/*.wav")) if p.parent.name != "noise")
        runs.append((["predict", str(art), "--input", str(rec), "--outdir", str(out / "predict" / "audio"),
                      "--rtype", "both", "--min-conf", "0.5", "--no-progress"],
                     out / "predict" / "audio" / "edgeport_predictions.csv"))
    if "geo" in parts:
        lat, lon, week = DEMO_PLACE
        runs.append((["predict", str(out / "geo" / "exports" / "geomodel.onnx"), "--lat", lat, "--lon", lon, "--week",
                      week, "--format", "csv", "--outdir", str(out / "predict" / "geo")],
                     out / "predict" / "geo" / "edgeport_species.csv"))
    code = 0
    for argv, table in runs:
        print(f"== edgeport {' '.join(argv)} ==")
        rc = main(argv)
        code = max(code, rc)
        if rc == 0:
            print("\n".join(table.read_text().splitlines()[:6]))
    return code



"""``edgeport demo``: the main job on an embedded default, in minutes on 2 CPU cores.

Two parts, each on data it makes itself (nothing is downloaded):

- geo: fits a non-trivial geo checkpoint to synthetic species range maps and exports it to every format,
  printing the validation table;
- audio: synthesises a labelled bird-call dataset (6 species + noise), trains a small DS-CNN on it and
  reports its ROC-AUC beside a mean-spectrum baseline.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

PARTS = ("geo", "audio")
HELP = "run the main job on built-in synthetic data: build reference models, export and validate every format"
log = logging.getLogger(__name__)


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
        code = max(code, _geo(args, out))
    if "audio" in args.parts:
        code = max(code, _audio(args, out))
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s; everything is under {out}/")
    return code


def _geo(args: argparse.Namespace, out: Path) -> int:
    from edgeport.export import ExportConfig, export_handle
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.reporting import format_table
    from edgeport.sources import load_source

    ckpt_dir = out / "geo" / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    print(f"== geo model: fitting a synthetic checkpoint ({args.geo_species} species, scale {args.geo_scale}) ==")
    summary = make_geo_checkpoint(
        ckpt_dir / "checkpoint_best.pt", n_species=args.geo_species, model_scale=args.geo_scale,
        steps=args.geo_steps, seed=args.seed,
    )
    print(f"   {summary['params']:,} parameters, {summary['steps']} steps in {summary['seconds']:.0f} s, final loss "
          f"{summary['final_loss']:.3f}, range-map MAE {summary['map_mae']:.4f}, {summary['distinct_top1']} distinct "
          f"top-1 species over the reference grid")
    print("== geo model: export to every format ==")
    handle = load_source(ckpt_dir / "checkpoint_best.pt")
    result = export_handle(handle, ExportConfig(formats=("all",), outdir=out / "geo" / "exports", force=True,
                                                 command_line="edgeport demo"))
    print(format_table(result.artifacts))
    return result.exit_code


def _audio(args: argparse.Namespace, out: Path) -> int:
    from edgeport.training.demo import train_demo

    print("== audio model: synthetic bird calls (6 species + noise), training a small DS-CNN ==")
    s = train_demo(out / "audio", seed=args.seed)
    print(f"   DS-CNN: validation ROC-AUC {s['val_roc_auc']:.3f}, held-out test ROC-AUC {s['test_roc_auc']:.3f} "
          f"({s['epochs_run']} epochs, {s['seconds_train']:.0f} s)")
    print(f"   baseline (logistic regression on the mean spectrum): test ROC-AUC {s['baseline_roc_auc']:.3f}")
    print(f"   model: {s['model_path']}")
    return 0

"""``edgeport demo``: the main job on an embedded default, in minutes on 2 CPU cores.

Builds a non-trivial geo checkpoint from synthetic species range maps and exports it to every format,
printing the validation table.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

HELP = "run the main job on built-in synthetic data: build reference models, export and validate every format"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outdir", default="demo_out", help="where the demo writes everything")
    p.add_argument("--force", action="store_true", help="replace an earlier demo in --outdir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--geo-species", type=int, default=200, help="species of the demo geo model")
    p.add_argument("--geo-scale", type=float, default=0.25, help="model_scale of the demo geo model")
    p.add_argument("--geo-steps", type=int, default=600, help="fit steps on the synthetic range maps")


def run(args: argparse.Namespace) -> int:
    from edgeport.errors import ConfigError
    from edgeport.export import ExportConfig, export_handle
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.reporting import format_table
    from edgeport.sources import load_source

    out = Path(args.outdir)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out} is not empty; pass --force to replace the earlier demo or choose another --outdir")
    t_start = time.perf_counter()
    ckpt_dir = out / "geo" / "checkpoint"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    print(f"== geo model: fitting a synthetic checkpoint ({args.geo_species} species, scale {args.geo_scale}) ==")
    summary = make_geo_checkpoint(
        ckpt_dir / "checkpoint_best.pt", n_species=args.geo_species, model_scale=args.geo_scale,
        steps=args.geo_steps, seed=args.seed,
    )
    print("   " + ", ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, (dict, list))))
    print("== geo model: export to every format ==")
    handle = load_source(ckpt_dir / "checkpoint_best.pt")
    result = export_handle(handle, ExportConfig(formats=("all",), outdir=out / "geo" / "exports", force=True,
                                                 command_line="edgeport demo"))
    print(format_table(result.artifacts))
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s; reports under {out}/")
    return result.exit_code

"""``edgeport bench`` on the demo's geo exports: size, latency, agreement and task metric of every artifact.

Makes the demo's geo checkpoint (``edgeport demo``'s settings: 200 species, model_scale 0.25, 600 fit steps on
the synthetic range maps, seed 0), exports it with ``edgeport export --formats all``, then runs

    edgeport bench EXPORTS --reference checkpoint_best.pt --reference-inputs bench_inputs.npz --threads 1

where ``bench_inputs.npz`` holds 1,000 geo reference rows (seed 7, not the export's validation rows) and, as
``labels``, presence drawn from the synthetic maps' true probabilities (the task metric is macro ROC-AUC against
that ground truth), and once more with the defaults (the export's golden rows, no labels). Writes the printed
tables and both bench.json files to benchmarks/results/bench_demo.json.

    nice -n 5 .venv/bin/python benchmarks/bench_demo.py [--threads 1 --repeats 30 --batch 32]
    .venv/bin/python benchmarks/bench_demo.py --work DIR --reuse   # the benches again on an earlier run's exports
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _edgeport(argv: list[str]) -> tuple[int, str]:
    """``edgeport ARGV`` in a fresh process (as a user runs it: runtimes take their thread count at start)."""
    run = subprocess.run([sys.executable, "-c", "import sys; from edgeport.cli.main import main; sys.exit(main(sys.argv[1:]))",
                          *argv], check=False, capture_output=True, text=True, env=os.environ | {"PYTHONHASHSEED": "0"})
    print(run.stdout, end="")
    if run.returncode:
        print(run.stderr[-2000:], file=sys.stderr)
    return run.returncode, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--species", type=int, default=200)
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--rows", type=int, default=1000, help="bench input rows (with labels)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--work", type=Path, default=None, help="folder for the checkpoint and exports (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_demo.json")
    ap.add_argument("--reuse", action="store_true",
                    help="with --work: keep the checkpoint and exports an earlier run left there (their fit and export "
                         "figures are taken from --out) and run only the benches")
    args = ap.parse_args()
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    load_start = os.getloadavg()

    import torch

    from edgeport.families import FAMILIES
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.families.geo.synthetic import SpeciesMaps

    work = args.work or Path(tempfile.mkdtemp(prefix="edgeport-bench-demo-"))
    ckpt = work / "checkpoint" / "checkpoint_best.pt"
    exports = work / "exports"
    reuse = args.reuse and args.work is not None and (exports / "manifest.json").is_file() and ckpt.is_file()
    if reuse:
        checkpoint_info, export_info = previous["checkpoint"], previous["export"] | {"reused": str(exports)}
        export_code = export_info["exit_code"]
    else:
        t0 = time.perf_counter()
        fit = make_geo_checkpoint(ckpt, n_species=args.species, model_scale=args.scale, steps=args.steps, seed=0)
        checkpoint_info = {"species": args.species, "model_scale": args.scale, "steps": args.steps,
                           "fit_seconds": round(time.perf_counter() - t0, 1), "params": fit["params"],
                           "map_mae": fit["map_mae"]}
        t0 = time.perf_counter()
        export_code, export_table = _edgeport(["export", str(ckpt), "--formats", "all", "--outdir", str(exports),
                                               "--force"])
        export_info = {"exit_code": export_code, "seconds": round(time.perf_counter() - t0, 1),
                       "table": export_table.splitlines()}

    feeds = FAMILIES.get("geo").reference_inputs(n=args.rows, seed=7)
    x = torch.as_tensor(feeds["input"])
    truth = SpeciesMaps.generate(args.species, 0).probabilities(x[:, 0], x[:, 1], x[:, 2]).numpy()
    labels = (np.random.default_rng(7).random(truth.shape) < truth).astype(np.int8)
    np.savez(work / "bench_inputs.npz", input=feeds["input"], labels=labels)

    common = ["--threads", str(args.threads), "--repeats", str(args.repeats), "--batch", str(args.batch)]
    runs = {}
    for key, extra in (("labelled", ["--reference", str(ckpt), "--reference-inputs", str(work / "bench_inputs.npz"),
                                     "--outdir", str(work / "bench_labelled")]),
                       ("golden", ["--outdir", str(work / "bench_golden")])):
        argv = ["bench", str(exports), *common, *extra, "--force"]
        t0 = time.perf_counter()
        code, printed = _edgeport(argv)
        outdir = Path(extra[extra.index("--outdir") + 1])
        runs[key] = {"command": "edgeport " + shlex.join(argv), "exit_code": code,
                     "seconds": round(time.perf_counter() - t0, 1), "table": printed.splitlines(),
                     "bench": json.loads((outdir / "bench.json").read_text())}

    result = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "checkpoint": checkpoint_info,
        "export": export_info,
        "labels": {"rows": args.rows, "seed": 7, "positives_per_row": float(labels.sum(1).mean()),
                   "species_with_positives": int((labels.sum(0) > 0).sum())},
        "runs": runs,
    }
    from edgeport.fileio import atomic_write_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return max(export_code, *(r["exit_code"] for r in runs.values()))


if __name__ == "__main__":
    sys.exit(main())

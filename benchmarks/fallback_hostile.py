"""The accuracy-driven float fallback on models with one layer made hostile to INT8 (issue 14, item 4).

The models are the tests' (``tests/_support/hostile.py``): one channel of an inner activation ~2000x the others,
so a per-tensor activation scale rounds every other channel of that tensor to zero. For each route the fallback
runs as ``edgeport export --auto-fallback`` runs it (``exporters.fallback.fallback_export``, default budget 3),
and the result records every step (layers float, who chose them, mean cosine, top-1, gate margin, size, p50
latency at batch 1), the per-layer report's worst rows of the plain artifact and the cost of the final one.

    .venv/bin/python benchmarks/fallback_hostile.py [--latency-repeats 200]

Writes benchmarks/results/fallback_hostile.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests._support.hostile: the models the tests use
OUT = HERE / "results" / "fallback_hostile.json"


def run(name: str, handle, fmt: str, latency_repeats: int) -> dict:
    from edgeport.exporters import ExportOptions
    from edgeport.exporters.fallback import fallback_export, steps_summary

    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        res = fallback_export(handle, fmt, work_dir=Path(tmp), options=ExportOptions(calibration_samples=128),
                              latency_repeats=latency_repeats)
        seconds = time.time() - t
        print(f"\n{name} -> {fmt}\n{res.table()}", flush=True)
        worst = [{"layer": r.layer, "op": r.op, "sqnr_db": r.sqnr_db, "loss_db": r.loss_db,
                  "rmse_over_scale": r.rmse_over_scale} for r in res.per_layer.rows[:3]]
        steps = [dict(s, cosine_mean=(st.headline or {}).get("cosine_mean"),
                      top1_agreement=(st.headline or {}).get("top1_agreement"))
                 for s, st in zip(steps_summary(res), res.steps)]
        return {"model": name, "format": fmt, "passed": res.passed, "float_layers": res.float_layers,
                "stopped": res.stopped, "steps": steps, "plain_worst_layers": worst, "cost": res.cost(),
                "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    from edgeport.fileio import atomic_write_json
    from tests._support import hostile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-repeats", type=int, default=200)
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    results = [run("keras: Dense 'hostile' (tanh)", hostile.keras_hostile_handle(), "tflite_int8_full",
                   args.latency_repeats),
               run("torch: Linear 'hostile.fc_out'", hostile.torch_hostile_handle(), "onnx_int8_static",
                   args.latency_repeats)]
    atomic_write_json(OUT, {
        "command": "python benchmarks/fallback_hostile.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "models": "tests/_support/hostile.py (16 -> 32 -> 32 -> 32 -> 10; one channel x2000)",
        "calibration_rows": 128, "runs": results,
        "loadavg_start": load0, "loadavg_end": os.getloadavg(), "cpus": os.cpu_count(),
        "machine": platform.machine(), "python": platform.python_version(),
    })
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Geo model export benchmark: scale 0.75, 12,012 species (the seed's production size).

Per format: export seconds, artifact size against the parameter-count bound (4 bytes/param FP32, 2 FP16,
1 INT8), max and mean diff against PyTorch, and latency (ONNX Runtime / LiteRT / TF) at batch 1 and 256.
TFLite artifacts have a dynamic batch, so batch 256 is one call (``calls`` says how many it took). Also the
export folder's size split (artifacts, golden vectors, other) and, measured in the same run, what the
golden vectors weighed in the former layout (every artifact's file holding 200 rows of inputs, source and
artifact outputs, compressed). The previous JSON's figures are kept beside each format's (``previous``).
Writes JSON to benchmarks/results/export_geo.json.

    nice -n 5 .venv/bin/python benchmarks/export_geo.py [--species 12012 --scale 0.75 --steps 150]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "int8_dynamic": 1, "int8_static": 1, "int8_full": 1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--species", type=int, default=12012)
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--steps", type=int, default=150, help="fit steps of the synthetic checkpoint")
    ap.add_argument("--formats", nargs="+", default=["all"])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "export_geo.json")
    args = ap.parse_args()
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    load_start = os.getloadavg()

    from edgeport.export import ExportConfig, export_handle
    from edgeport.exporters import FORMATS
    from edgeport.families import FAMILIES
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.reporting import format_table, framework_versions
    from edgeport.runtimes import open_runner
    from edgeport.sources import load_source

    work = Path(tempfile.mkdtemp(prefix="edgeport-bench-geo-"))
    t0 = time.perf_counter()
    fit = make_geo_checkpoint(work / "ckpt" / "checkpoint_best.pt", n_species=args.species,
                              model_scale=args.scale, steps=args.steps, seed=0)
    fit_s = time.perf_counter() - t0
    handle = load_source(work / "ckpt" / "checkpoint_best.pt")
    n_params = sum(p.numel() for p in handle.model.parameters())
    result = export_handle(handle, ExportConfig(formats=tuple(args.formats), outdir=work / "exports"))
    print(format_table(result.artifacts))

    geo = FAMILIES.get("geo")
    feeds256 = geo.reference_inputs(n=256, seed=5)
    rows = {1: {k: v[:1] for k, v in feeds256.items()}, 256: feeds256}
    formats = {}
    for a in result.artifacts:
        fmt = FORMATS.get(a.format)
        entry = {
            "status": a.status,
            "error": a.error,
            "export_seconds": a.export_seconds,
            "size_bytes": a.size_bytes,
            "size_bound_bytes": n_params * BYTES_PER_PARAM[fmt.precision],
            "size_over_bound": (a.size_bytes / (n_params * BYTES_PER_PARAM[fmt.precision])) if a.size_bytes else None,
            "validation": a.comparison.headline() if a.comparison else None,
            "notes": {k: v for k, v in a.notes.items() if k != "traceback"},
        }
        if a.path is not None and a.status == "passed":
            runner = open_runner(fmt.runtime, a.path)
            lat = {}
            for batch, feeds in rows.items():
                t = time.perf_counter()
                runner.run(feeds, batch_size=batch)  # warm-up and a first figure with any fixed-batch chunking
                first = time.perf_counter() - t
                reps = max(3, args.repeats // (10 if batch > 1 else 1))
                times = []
                for _ in range(reps):
                    t = time.perf_counter()
                    runner.run(feeds, batch_size=batch)
                    times.append(time.perf_counter() - t)
                lat[f"batch_{batch}"] = {"p50_ms": 1e3 * float(np.median(times)),
                                         "p90_ms": 1e3 * float(np.percentile(times, 90)),
                                         "first_ms": 1e3 * first, "runs": reps}
            entry["latency"] = lat
            entry["runtime"] = fmt.runtime
            entry["fixed_batch"] = runner.fixed_batch
            entry["latency"]["batch_256"]["calls"] = -(-256 // (runner.fixed_batch or 256))
        before = (previous.get("formats") or {}).get(a.format)
        if before:
            entry["previous"] = {"date": previous.get("date"), "export_seconds": before.get("export_seconds"),
                                 "size_bytes": before.get("size_bytes"),
                                 "max_abs_diff": (before.get("validation") or {}).get("max_abs_diff"),
                                 "latency_p50_ms": {b: v.get("p50_ms") for b, v in (before.get("latency") or {}).items()},
                                 "fixed_batch": before.get("fixed_batch")}
        formats[a.format] = entry
        print(f"{a.format:18s} {entry.get('latency', {})}")

    folder = folder_split(result, work)

    out = {
        "benchmark": "export_geo",
        "loadavg": {"start": load_start, "end": os.getloadavg()},
        "export_folder": folder,
        "command": shlex.join([sys.executable.split("/")[-1], *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()},
        "versions": framework_versions(),
        "model": {"species": args.species, "model_scale": args.scale, "parameters": n_params,
                  "fit_steps": args.steps, "fit_seconds": round(fit_s, 1),
                  "fit_summary": {k: v for k, v in fit.items() if not isinstance(v, (dict, list))}},
        "formats": formats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


def folder_split(result, work: Path) -> dict:
    """Bytes of the export folder: artifacts, golden vectors, other; and the former golden layout's bytes,
    re-created here from the same rows (200 reference rows per artifact, inputs + source + artifact outputs)."""
    from edgeport.export import golden_name
    from edgeport.exporters import FORMATS
    from edgeport.fileio import path_size
    from edgeport.runtimes import open_runner, runner_class

    outdir = result.outdir
    arts = {a.path.name for a in result.artifacts if a.path is not None}
    golden = {p.name for p in outdir.iterdir() if p.name.endswith("_validation_data.npz")}
    sizes = {p.name: path_size(p) for p in outdir.iterdir()}
    split = {"artifacts": sum(sizes[n] for n in arts), "golden_vectors": sum(sizes[n] for n in golden),
             "other": sum(v for n, v in sizes.items() if n not in arts | golden)}
    split["total"] = sum(split.values())
    split["total_over_artifacts"] = split["total"] / split["artifacts"]
    split["golden_files"] = {n: sizes[n] for n in sorted(golden)}
    # the former layout: every artifact's golden file held all reference rows of inputs, source, artifact
    from edgeport.export import ExportConfig, reference_feeds

    feeds = reference_feeds(result.handle, ExportConfig(), 0)
    ref, _ = runner_class("torch").from_handle(result.handle).run(feeds)
    old = work / "former_golden"
    old.mkdir()
    for a in result.artifacts:
        if a.path is None:
            continue
        fmt = FORMATS.get(a.format)
        got, _ = open_runner(fmt.runtime, a.path).run(feeds)
        np.savez_compressed(old / golden_name(fmt, result.handle.name, failed=not a.passed),
                            **{f"input__{k}": v for k, v in feeds.items()},
                            **{f"reference__{k}": v for k, v in ref.items()},
                            **{f"artifact__{k}": v for k, v in got.items()})
    former = sum(path_size(p) for p in old.iterdir())
    split["former_layout"] = {"rows": int(next(iter(feeds.values())).shape[0]), "golden_vectors": former,
                              "total": split["artifacts"] + former + split["other"],
                              "total_over_artifacts": (split["artifacts"] + former + split["other"])
                              / split["artifacts"]}
    print(json.dumps({k: v for k, v in split.items() if k != "golden_files"}, indent=1))
    return split


if __name__ == "__main__":
    sys.exit(main())

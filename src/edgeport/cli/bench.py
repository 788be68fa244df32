"""``edgeport bench DIR``: size, latency, agreement with the source and task metric of every artifact."""

from __future__ import annotations

import argparse

HELP = ("benchmark every artifact of an export folder (or a folder of .onnx/.tflite files with --reference): size, "
        "latency p50/p90 at batch 1 and batched, agreement with the source, task metric; table, bench.json, plot, "
        "report.html")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR", help="an export folder, or a folder of .onnx/.tflite files (with --reference)")
    p.add_argument("--reference", default=None, metavar="MODEL",
                   help="the model the artifacts are compared with (.onnx, .tflite, .keras, SavedModel folder, PyTorch "
                        "checkpoint or .pt2); default for an export folder: the source outputs stored in its golden file")
    p.add_argument("--reference-inputs", default=None, metavar="FILE.npz",
                   help="inputs, one array per input name, and optionally a 'labels' array ((rows,) class indices or "
                        "(rows, classes) 0/1) for the task metric; needs --reference")
    p.add_argument("--rows", type=int, default=200, help="seeded random input rows when nothing else gives inputs")
    p.add_argument("--batch", type=int, default=32, help="rows per call of the batched latency")
    p.add_argument("--threads", type=int, default=1, help="runtime threads (ONNX Runtime, LiteRT, TF, torch)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per latency figure")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before the timed ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--outdir", default=None, help="where bench.json, bench.png and report.html go (default: DIR)")
    p.add_argument("--force", action="store_true", help="replace an earlier bench.json / bench.png")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="skip bench.png")
    p.add_argument("--trust-source", action="store_true",
                   help="allow unsafe loading of --reference (pickled checkpoints, Keras Lambda layers)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeport.benchmarking import (
        BenchConfig,
        bench_folder,
        write_bench,
    )
    from edgeport.reporting.bench_table import format_bench_table

    config = BenchConfig(batch=args.batch, threads=args.threads, repeats=args.repeats, warmup=args.warmup,
                         reference=Path(args.reference) if args.reference else None,
                         reference_inputs=Path(args.reference_inputs) if args.reference_inputs else None,
                         rows=args.rows, seed=args.seed, trust_source=args.trust_source)
    result = bench_folder(Path(args.folder), config)
    paths = write_bench(result, args.outdir, force=args.force, plots=args.plots)
    print(format_bench_table(result))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return result.exit_code

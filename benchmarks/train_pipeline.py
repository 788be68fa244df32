"""Training data pipeline throughput and training step time, with and without the decoded-audio cache.

Measures chunks/s of the worker pipeline (decode FLAC at 44.1 kHz, resample, salient crop, spectrogram)
with 0, 1 and 2 workers and no cache (the pipeline before the cache), then from a warm decoded-audio cache
(memory, disk folder only, and 2 workers on the folder); the training step time of the default DS-CNN
(hybrid/pwl, alpha 1.0, batch 32) and of the demo model without data (one batch fed again and again) and
with data from the second epoch on (every file decoded once, so the cache is warm; batches prefetched by
the trainer's background thread), and peak resident memory. Writes benchmarks/results/train_pipeline.json
with the machine's load average (the CPU may be shared).

Usage: .venv/bin/python benchmarks/train_pipeline.py [--files 48] [--chunks 288]
       .venv/bin/python benchmarks/train_pipeline.py --only-cache [--repeat 3] [--out NAME.json]
(``--only-cache``: the chunks/s rows alone, repeated, with medians and the main process's CPU time per chunk,
for a machine whose load changes; run it with another tree's ``src`` on PYTHONPATH for an A/B comparison.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path


def _data(root: Path, n_files: int) -> list[str]:
    import numpy as np
    import soundfile as sf

    from edgeport.audio.synthetic import CallSynth, SyntheticSpec, make_clip

    spec = SyntheticSpec(n_species=6, duration=20.0, sample_rate=44100)
    synth, rng = CallSynth(spec), np.random.default_rng(0)
    files = []
    for i in range(n_files):
        p = root / f"sp{i % 6}" / f"{i:03d}.flac"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), make_clip(synth, i % 6, rng), 44100, format="FLAC")
        files.append(str(p))
    return files


def _warm(stream, n_files: int) -> None:
    """Read until every file has been opened once (the first epoch: the cache now holds them all)."""
    while stream.files_opened < n_files + stream.prefetch:
        stream.take()


def pipeline_throughput(files, cfg, workers: int, n_chunks: int, k: int, cache=None) -> dict:
    import json as _json

    import numpy as np

    from edgeport.training.data import ChunkStream, make_executor

    labels = np.zeros((len(files), cfg.num_classes), np.float32)
    ex = make_executor(workers)
    try:
        stream = ChunkStream(files, labels, _json.dumps(cfg.to_dict()), executor=ex, seed=0,
                             max_chunks_per_file=k, max_duration=60.0, reservoir_size=32, cache=cache)
        stream.take()  # worker start-up is not throughput
        if cache is not None:
            _warm(stream, len(files))
        load = os.getloadavg()[0]
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(n_chunks):
            stream.take()
        dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        if ex:
            ex.shutdown()
    row = {"workers": workers, "max_chunks_per_file": k, "chunks": n_chunks, "seconds": round(dt, 2),
           "chunks_per_s": round(n_chunks / dt, 1), "files_opened": stream.files_opened,
           "main_process_cpu_ms_per_chunk": round(1000 * cpu / n_chunks, 2), "loadavg_1min_at_start": round(load, 2)}
    if cache is not None:
        row["cache"] = "memory" if cache.memory_mb > 0 else "disk folder only"
    return row


def step_time(cfg, batch: int = 32, steps: int = 10) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.model_config import LOGITS_LAYER
    from edgeport.training.losses import cosine_schedule, make_loss, make_optimizer
    from edgeport.training.trainer import make_train_step

    model = build_model(cfg)
    lm = keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output)
    opt = make_optimizer("adam", cosine_schedule(1e-3, 100), grad_clip=1.0)
    opt.build(model.trainable_variables)
    step = make_train_step(lm, make_loss("bce", label_smoothing=0.1), opt, model.trainable_variables)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch, *cfg.input_shape)).astype(np.float32))
    y = tf.constant((rng.random((batch, cfg.num_classes)) < 0.2).astype(np.float32))
    w = tf.ones((batch,))
    t = time.perf_counter()
    step(x, y, w)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        step(x, y, w)
    return {"params": int(model.count_params()), "input_shape": list(cfg.input_shape), "batch": batch,
            "first_step_s": round(first, 2), "step_ms": round(1000 * (time.perf_counter() - t) / steps, 1)}


def loop_time(files, cfg, workers: int, steps: int = 12, batch: int = 32, cache=None) -> dict:
    """Training steps fed by the stream: does loading overlap with the step (workers) or add to it (0)?
    With a cache: from the second epoch (every file read once first), batches prefetched as the trainer does."""
    import json as _json

    import keras
    import numpy as np
    import tensorflow as tf

    from edgeport.families.audio.dscnn import build_model
    from edgeport.families.audio.model_config import LOGITS_LAYER
    from edgeport.training.data import ChunkStream, make_executor, prefetched
    from edgeport.training.losses import cosine_schedule, make_loss, make_optimizer
    from edgeport.training.trainer import make_train_step

    model = build_model(cfg)
    lm = keras.Model(model.inputs, model.get_layer(LOGITS_LAYER).output)
    opt = make_optimizer("adam", cosine_schedule(1e-3, 100), grad_clip=1.0)
    opt.build(model.trainable_variables)
    step = make_train_step(lm, make_loss("bce"), opt, model.trainable_variables)
    labels = np.zeros((len(files), cfg.num_classes), np.float32)
    ex = make_executor(workers)
    try:
        stream = ChunkStream(files, labels, _json.dumps(cfg.to_dict()), executor=ex, seed=0, max_chunks_per_file=3,
                             reservoir_size=64, cache=cache)
        if cache is not None:
            stream.take()
            _warm(stream, len(files))
            it = prefetched(stream.batches(batch, steps + 1))
        else:
            it = stream.batches(batch, steps + 1)
        x, y = next(it)  # warm-up: tracing and worker start-up
        step(tf.constant(x), tf.constant(y), tf.ones((batch,)))
        t = time.perf_counter()
        for x, y in it:
            step(tf.constant(x), tf.constant(y), tf.ones((batch,)))
        dt = time.perf_counter() - t
    finally:
        if ex:
            ex.shutdown()
    row = {"workers": workers, "steps": steps, "batch": batch, "step_ms_with_data": round(1000 * dt / steps, 1)}
    if cache is not None:
        row["cache"] = "warm (second epoch on), prefetched"
    return row


def cached_rows(files, cfg, disk: str, n_chunks: int) -> list[dict]:
    """Chunks/s from a warm decoded-audio cache: memory (0 workers), the disk folder only (0 workers), and
    2 workers with memory in front of the folder."""
    from edgeport.audio.cache import CacheSpec

    return [pipeline_throughput(files, cfg, 0, n_chunks, 3, CacheSpec(disk, 1024)),
            pipeline_throughput(files, cfg, 0, n_chunks, 3, CacheSpec(disk, 0)),
            pipeline_throughput(files, cfg, 2, n_chunks, 3, CacheSpec(disk, 512))]


def only_cache(args, cfg, out: dict) -> Path:
    """The cache rows (and the uncached in-process row beside them) ``--repeat`` times, interleaved so that a
    change of the machine's load hits every configuration alike; the median of each."""
    import statistics

    names = ("memory, 0 workers", "disk folder only, 0 workers", "memory + folder, 2 workers",
             "uncached, 0 workers")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        files = _data(Path(tmp), args.files)
        disk = str(Path(tmp) / "cache")
        for rep in range(args.repeat):
            rows = [*cached_rows(files, cfg, disk, args.chunks), pipeline_throughput(files, cfg, 0, args.chunks, 3)]
            for n, r in zip(names, rows, strict=True):
                runs[n].append(r)
                print(rep, n, r, flush=True)
    out["repeats"] = args.repeat
    out["runs"] = runs
    out["median_chunks_per_s"] = {n: statistics.median(r["chunks_per_s"] for r in rs) for n, rs in runs.items()}
    out["median_main_process_cpu_ms_per_chunk"] = {
        n: statistics.median(r["main_process_cpu_ms_per_chunk"] for r in rs) for n, rs in runs.items()}
    out["target_chunks_per_s"] = {"value": 585, "rule": "at least 5x the 117 chunks/s of the pipeline before the "
                                  "cache (issue 12)"}
    return Path(__file__).parent / "results" / (args.out or "train_pipeline_cache.json")


def _edgeport_source() -> dict:
    """Which edgeport this run measured (the folder and its git commit), for A/B runs against another tree."""
    import subprocess

    import edgeport

    src = Path(edgeport.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                                    text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        head, dirty = None, None
    return {"path": str(src), "commit": head, "uncommitted_changes": dirty}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--chunks", type=int, default=288)
    ap.add_argument("--only-cache", action="store_true",
                    help="only the chunks/s rows (cache: memory, folder, 2 workers; uncached in-process), "
                         "--repeat times with medians, into results/train_pipeline_cache.json")
    ap.add_argument("--repeat", type=int, default=3, help="--only-cache: runs of every row (default 3)")
    ap.add_argument("--out", default=None, help="--only-cache: result file name under benchmarks/results/")
    args = ap.parse_args()
    if args.repeat < 1 or (args.out is not None and (Path(args.out).name != args.out or
                                                     not args.out.endswith(".json"))):
        ap.error("--repeat must be >= 1 and --out a file name ending in .json (written under benchmarks/results/)")
    from edgeport.audio.cache import CacheSpec
    from edgeport.families.audio.model_config import AudioModelConfig

    cfg = AudioModelConfig(num_classes=6, class_names=tuple(f"sp{i}" for i in range(6)))  # seed defaults
    out = {"command": "python benchmarks/train_pipeline.py " + " ".join(sys.argv[1:]), "cpus": os.cpu_count(),
           "machine": platform.machine(), "python": sys.version.split()[0], "edgeport": _edgeport_source(),
           "loadavg_start": [round(x, 2) for x in os.getloadavg()],
           "data": f"{args.files} FLAC files, 20 s at 44.1 kHz -> 24 kHz, 3 s chunks, hybrid frontend (264x256)"}
    if args.only_cache:
        dest = only_cache(args, cfg, out)
        _write(out, dest)
        return
    from edgeport.training.demo import demo_train_config

    demo = demo_train_config(Path("x"), Path("x.keras"))
    demo_cfg = dataclasses.replace(demo.audio, num_classes=6, class_names=cfg.class_names)
    with tempfile.TemporaryDirectory() as tmp:
        files = _data(Path(tmp), args.files)
        out["pipeline"] = [pipeline_throughput(files, cfg, w, args.chunks, 3) for w in (0, 1, 2)]
        out["pipeline"].append(pipeline_throughput(files, cfg, 2, args.chunks, 1))
        disk = str(Path(tmp) / "cache")
        out["pipeline_cached"] = cached_rows(files, cfg, disk, args.chunks)
        for row in out["pipeline"] + out["pipeline_cached"]:
            print(row, flush=True)
        out["train_step"] = {"default_dscnn": step_time(cfg), "demo_dscnn": step_time(demo_cfg)}
        print(out["train_step"], flush=True)
        files = _data(Path(tmp) / "demo", args.files)  # the demo model's own files (another folder)
        mem = CacheSpec(None, 1024)
        out["train_loop_demo_model"] = [loop_time(files, demo_cfg, w) for w in (0, 2)]
        out["train_loop_demo_model"] += [loop_time(files, demo_cfg, 0, cache=mem),
                                         loop_time(files, demo_cfg, 2, cache=CacheSpec(disk + "-demo", 512))]
        out["train_loop_default_model"] = [loop_time(files, cfg, 0, cache=CacheSpec(None, 1024))]
        print(out["train_loop_demo_model"], out["train_loop_default_model"], flush=True)
    base = {m: out["train_step"][k]["step_ms"] for m, k in (("demo", "demo_dscnn"), ("default", "default_dscnn"))}
    for m, rows in (("demo", out["train_loop_demo_model"]), ("default", out["train_loop_default_model"])):
        for r in rows:
            r["ratio_to_step_without_data"] = round(r["step_ms_with_data"] / base[m], 2)
    old_rate = out["pipeline"][0]["chunks_per_s"]
    for r in out["pipeline_cached"]:
        r["speedup_vs_uncached_in_process"] = round(r["chunks_per_s"] / old_rate, 1)
    _write(out, Path(__file__).parent / "results" / "train_pipeline.json")


def _write(out: dict, dest: Path) -> None:
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["peak_rss_mb_main_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

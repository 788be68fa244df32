"""``edgeport predict`` on one hour of synthetic audio with the demo DS-CNN: real-time factor and peak memory.

The demo model and its exports come from an ``edgeport demo`` output folder (``--demo-out``: its
``audio/model/demo_dscnn.keras`` and ``audio/exports/`` .tflite FP32, full-INT8 ``_quantized.tflite`` and
.onnx) or are made here (``train_demo`` + ``edgeport export --formats tflite,tflite_int8_full,onnx``). The
recording: ``--hours`` of back-to-back synthetic clips (demo species and noise, the demo's difficulty) at
22.05 kHz, written block by block, so it is resampled to the model's 16 kHz as a user's recording would be.

Each artifact runs in its own process (clean peak memory): ``AudioPredictor`` (the model config found as
``evaluate`` finds it), min-conf 0.1, no overlap, batch 64. Real-time factor = audio seconds / wall seconds
of the prediction (model loading excluded; given separately). Memory: the process's resident set after
loading the model and its peak (``VmHWM``) over the whole run.

Usage: nice -n 5 .venv/bin/python benchmarks/predict_audio.py [--demo-out demo_out] [--hours 1]
       -> benchmarks/results/predict_audio.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = {"keras": "model/demo_dscnn.keras", "tflite": "exports/demo_dscnn.tflite",
           "tflite_int8_full": "exports/demo_dscnn_quantized.tflite", "onnx": "exports/demo_dscnn.onnx"}


def _status_mb(key: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, MB. ``VmHWM`` starts afresh at
    exec, unlike ``ru_maxrss``, which a child started by ``subprocess`` inherits from its parent on Linux."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def child(artifact: str, recording: str, max_duration: str = "") -> dict:
    """Runs in its own process: open, predict (the first ``max_duration`` seconds if given), measure."""
    from edgeport.prediction.audio import AudioPredictor

    t0 = time.perf_counter()
    p = AudioPredictor(artifact, recording, max_duration=float(max_duration) if max_duration else None)
    load_s = time.perf_counter() - t0
    rss_loaded = _status_mb("VmRSS")
    peak_loaded = _status_mb("VmHWM")
    t1 = time.perf_counter()
    (res,) = list(p.run())
    wall = time.perf_counter() - t1
    peak = _status_mb("VmHWM")
    info = p.info
    return {"artifact": Path(artifact).name, "runtime": info["runtime"], "model_config": info["model_config"],
            "audio_seconds": res.duration_s, "chunks": res.chunks, "failed_chunks": res.failed_chunks,
            "detections": len(res.detections), "sigmoid_applied": info["apply_sigmoid"],
            "predict_wall_s": wall, "inference_s": info["inference_seconds"], "load_s": load_s,
            "real_time_factor": res.duration_s / wall,
            "rss_after_load_mb": rss_loaded, "peak_rss_before_predict_mb": peak_loaded, "peak_rss_mb": peak,
            "peak_rss_growth_during_predict_mb": peak - rss_loaded}


def write_recording(path: Path, hours: float, seed: int = 0) -> float:
    """Back-to-back synthetic clips (a species or noise each) at 22.05 kHz, written 10 minutes at a time."""
    import numpy as np
    import soundfile as sf

    from edgeport.audio.synthetic import CallSynth, SyntheticSpec, make_clip
    from edgeport.training.demo import DEMO_DIFFICULTY

    spec = SyntheticSpec(difficulty=DEMO_DIFFICULTY)
    synth, rng = CallSynth(spec), np.random.default_rng(seed)
    total = int(hours * 3600 * spec.sample_rate)
    written = 0
    with sf.SoundFile(str(path), "w", samplerate=spec.sample_rate, channels=1, subtype="PCM_16") as f:
        while written < total:
            block = []
            for _ in range(150):  # 150 clips of 4 s = 10 minutes
                sp = int(rng.integers(-1, spec.n_species))
                block.append(make_clip(synth, None if sp < 0 else sp, rng))
            x = np.concatenate(block)[: total - written]
            f.write(np.clip(x, -1.0, 1.0))
            written += x.size
    return written / spec.sample_rate


def make_models(outdir: Path) -> Path:
    """``edgeport demo``'s audio model and exports (the layout ``--demo-out`` points to)."""
    from edgeport.cli.main import main
    from edgeport.training.demo import train_demo

    demo = train_demo(outdir / "audio", seed=0)
    rc = main(["export", demo["model_path"], "--formats", "tflite", "tflite_int8_full", "onnx", "--data-path-train",
               demo["train_dir"], "--outdir", str(outdir / "audio" / "exports"), "--force"])
    if rc != 0:
        raise SystemExit(f"export failed (exit {rc})")
    return outdir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-out", default=None, help="an edgeport demo output folder (default: train and export here)")
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "predict_audio.json"))
    ap.add_argument("--child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = os.getloadavg()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        demo_out = Path(args.demo_out) if args.demo_out else make_models(Path(tmp))
        rec = Path(tmp) / "one_hour.wav"
        seconds = write_recording(rec, args.hours)
        rows = {}
        # the FP32 TFLite again on the first 6 minutes: the peak memory does not grow with the recording's length
        runs = [(fmt, rel, "") for fmt, rel in FORMATS.items()] + [("tflite_first_6_min", FORMATS["tflite"], "360")]
        for fmt, rel, max_duration in runs:
            artifact = demo_out / "audio" / rel
            r = subprocess.run([sys.executable, __file__, "--child", str(artifact), str(rec), max_duration], check=False,
                               capture_output=True,
                               text=True, env=os.environ.copy())
            if r.returncode != 0:
                rows[fmt] = {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
            else:
                rows[fmt] = json.loads(r.stdout.strip().splitlines()[-1])
            print(fmt, json.dumps(rows[fmt]), flush=True)
            rows[fmt]["loadavg_after"] = os.getloadavg()
        import numpy as np
        import soundfile

        result = {
            "command_line": " ".join([Path(sys.executable).name, *sys.argv]),
            "recording": {"seconds": seconds, "sample_rate": soundfile.info(str(rec)).samplerate,
                          "bytes": rec.stat().st_size, "kind": "back-to-back synthetic 4 s clips (demo species "
                          "and noise), 16-bit PCM WAV"},
            "model_source": str(demo_out) if args.demo_out else "train_demo + edgeport export in a temporary folder",
            "settings": {"min_conf": 0.1, "overlap_s": 0.0, "batch_size": 64, "block_seconds": 60.0},
            "formats": rows,
            "whole_recording_float32_mb_at_16k": seconds * 16000 * 4 / 2**20,
            "seconds_total": time.time() - t0,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "cpus": os.cpu_count(),
            "nice": os.nice(0), "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__,
        }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

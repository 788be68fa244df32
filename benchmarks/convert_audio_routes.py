"""Full-integer INT8 TFLite of a trained DS-CNN: the TFLite converter's PTQ vs AI Edge Quantizer, and which
parts stay float (docs/dev/tflite-route.md, audio section; docs/convert-audio.md).

Trains a DS-CNN on a synthetic labelled folder (or takes --model X.keras --data FOLDER), then exports
``tflite_int8_full`` through edgeport's pipeline for each variant and records the comparator's figures
against Keras on the held-out chunks (silence and very quiet clips first):

- route: ``converter`` (tf.lite PTQ, float layers via QuantizationDebugger denylist) / ``ai-edge-quantizer``;
- float parts: the per-sample normalisation in float (default) / everything INT8 (``quantize_normalize``) /
  ``--float-frontend``; per-channel / per-tensor;
and ``tflite_int8`` (dynamic range) for reference. Writes benchmarks/results/convert_audio_routes_<tag>.json.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/convert_audio_routes.py [--frontend hybrid] [--alpha 0.5]
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = [
    # name, format, extra options, per_tensor
    ("converter", "tflite_int8_full", {"int8_route": "converter"}, False),
    ("converter_per_tensor", "tflite_int8_full", {"int8_route": "converter"}, True),
    ("converter_float_frontend", "tflite_int8_full", {"int8_route": "converter", "float_frontend": True}, False),
    ("converter_all_int8", "tflite_int8_full", {"int8_route": "converter", "quantize_normalize": True}, False),
    ("ai_edge_quantizer", "tflite_int8_full", {"int8_route": "ai-edge-quantizer"}, False),
    ("ai_edge_quantizer_float_frontend", "tflite_int8_full",
     {"int8_route": "ai-edge-quantizer", "float_frontend": True}, False),
    ("ai_edge_quantizer_all_int8", "tflite_int8_full",
     {"int8_route": "ai-edge-quantizer", "quantize_normalize": True}, False),
    ("dynamic", "tflite_int8", {}, False),
]


def _train(args, work: Path) -> tuple[Path, Path, dict]:
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.training.config import TrainConfig
    from edgeport.training.trainer import train

    data = work / "data"
    spec = SyntheticSpec(n_species=3, files_per_class=20, noise_files=10, duration=1.0, sample_rate=16000,
                         difficulty=0.0, snr_db=(5.0, 20.0))
    generate_dataset(data, spec, seed=3)
    mag = "pwl" if args.frontend in ("hybrid", "raw", "librosa") else "none"
    cfg = TrainConfig(data_path_train=str(data), checkpoint_path=str(work / "model" / "tiny.keras"),
                      sample_rate=16000, chunk_duration=0.5, spec_width=32, fft_length=256, num_mels=16,
                      alpha=args.alpha, embeddings_size=args.embeddings, batch_size=8, num_workers=0,
                      progress=False, max_chunks_per_file=2, bn_recalibration_batches=4, dropout=0.1,
                      learning_rate=3e-3, reservoir_size=64, seed=1, epochs=args.epochs,
                      audio_frontend=args.frontend, mag_scale=mag, **({"n_mfcc": 16} if args.frontend == "mfcc" else {}))
    t0 = time.perf_counter()
    r = train(cfg)
    return Path(cfg.checkpoint_path), data, {
        "trained": "synthetic 3 species x 20 + noise x 10, 1 s clips, 16 kHz (tests/conversion/conftest.py)",
        "frontend": args.frontend, "alpha": args.alpha, "embeddings_size": args.embeddings, "epochs": args.epochs,
        "val_roc_auc": r.val_roc_auc, "train_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frontend", default="hybrid")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--embeddings", type=int, default=64)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--demo", action="store_true",
                   help="train the demo's DS-CNN (edgeport.training.demo.train_demo, seed 0) and use its train folder")
    p.add_argument("--model", type=Path, default=None, help="a trained X.keras instead of training one")
    p.add_argument("--data", type=Path, default=None, help="its labelled data folder")
    p.add_argument("--tag", default=None)
    args = p.parse_args()

    from dataclasses import replace

    from edgeport.export import ExportConfig, export_handle
    from edgeport.exporters import ExportOptions
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data

    work = Path(tempfile.mkdtemp(prefix="convert-audio-"))
    if args.demo:
        from edgeport.training.demo import train_demo

        t0 = time.perf_counter()
        summary = train_demo(work / "demo", seed=0)
        model, data = work / "demo" / "model" / "demo_dscnn.keras", work / "demo" / "data" / "train"
        info = {"trained": "edgeport.training.demo.train_demo(seed=0): the demo's DS-CNN on its synthetic folder",
                "val_roc_auc": summary.get("val_roc_auc"), "test_roc_auc": summary.get("test_roc_auc"),
                "train_seconds": round(time.perf_counter() - t0, 1)}
    elif args.model:
        model, data, info = args.model, args.data, {"model": str(args.model), "data": str(args.data)}
    else:
        model, data, info = _train(args, work)
    handle = load_source(model)
    attach_audio_data(handle, data, num_samples=1024, validate_samples=256, progress=False)
    results = {}
    for name, fmt, extra, per_tensor in VARIANTS:
        if handle.config.get("audio_frontend") != "hybrid" and "all_int8" in name:
            continue  # no in-graph normalisation to put in INT8
        options = ExportOptions(calibration_samples=1024, per_tensor=per_tensor, npu_check=False, **extra)
        config = ExportConfig(formats=(fmt,), outdir=work / "out" / name, reference_rows=256, options=options)
        t0 = time.perf_counter()
        res = export_handle(handle, replace(config))
        a = res.artifacts[0]
        cmp = a.comparison.to_dict() if a.comparison is not None else None
        out = cmp["outputs"]["sigmoid"] if cmp else {}
        results[name] = {
            "format": fmt, "status": a.status, "error": a.error, "size_bytes": a.size_bytes,
            "seconds": round(time.perf_counter() - t0, 1),
            "rows": cmp["rows"] if cmp else None, "failed_rows": cmp["failed_rows"] if cmp else None,
            **{k: out.get(k) for k in ("cosine_mean", "cosine_worst", "pearson", "centred_pearson", "top1_agreement",
                                       "max_abs_diff", "mse", "mae", "sqnr_db")},
            "cpu_ops": a.notes.get("npu", {}).get("cpu_op_count"),
            "failures": cmp["failures"] if cmp else None,
        }
        print(f"{name:36s} {a.status:7s} " + " ".join(
            f"{k}={results[name][k]:.4f}" for k in ("cosine_mean", "centred_pearson", "top1_agreement")
            if isinstance(results[name][k], float)) + f" failed_rows={results[name]['failed_rows']}", flush=True)
    tag = args.tag or ("demo" if args.demo else f"{handle.config.get('audio_frontend')}_a{args.alpha:g}")
    payload = {
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "model": info, "calibration": handle.notes.get("calibration_extra"),
        "validation": "held-out chunks (never calibration), silence and -60/-80 dB chunks first; comparator of "
                      "edgeport.validation vs Keras on the sigmoid probabilities",
        "results": results,
    }
    out = Path(__file__).resolve().parent / "results" / f"convert_audio_routes_{tag}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

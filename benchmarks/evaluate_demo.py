"""``edgeport evaluate`` on the demo's DS-CNN: .keras, TFLite FP32 and ONNX FP32 on the held-out test folder.

Trains the demo model (``edgeport.training.demo.train_demo``), converts it to FP32 TFLite
(``TFLiteConverter.from_keras_model``) and FP32 ONNX of its logits (tf2onnx), exports its full-integer
INT8 TFLite with ``edgeport export --formats tflite_int8_full`` (model config found through the export's
manifest), then evaluates each with ``evaluate_audio_artifact`` (avg pooling, per-species report,
latency) and the Keras model with max and lme pooling and 1 s overlap.

Usage: .venv/bin/python benchmarks/evaluate_demo.py [--keep DIR]   -> benchmarks/results/evaluate_demo.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def convert(model_path: Path) -> dict[str, Path]:
    import keras
    import tensorflow as tf
    import tf2onnx

    from edgeport.families.audio.loading import load_trained_model

    model, cfg = load_trained_model(model_path)
    out = {"keras": model_path}
    tfl = model_path.with_suffix(".tflite")
    tfl.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    out["tflite"] = tfl
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    onnx = model_path.with_suffix(".onnx")
    spec = (tf.TensorSpec((None, *cfg.input_shape), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(logits, input_signature=spec, opset=17, output_path=str(onnx))
    out["onnx"] = onnx
    return out


def run(outdir: Path) -> dict:
    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.evaluation.report import write_reports
    from edgeport.training.demo import train_demo

    demo = train_demo(outdir, seed=0)
    arts = convert(Path(demo["model_path"]))
    from edgeport.cli.main import main

    exports = outdir / "exports"
    rc = main(["export", demo["model_path"], "--formats", "tflite_int8_full", "--data-path-train", demo["train_dir"],
               "--outdir", str(exports), "--force"])
    if rc == 0:
        arts["tflite_int8_full"] = exports / "demo_dscnn_quantized.tflite"
    test_dir = Path(demo["test_dir"])
    rows = {}
    runs = [(kind, path, {"species_report": True, "benchmark_latency": True}) for kind, path in arts.items()]
    runs += [("keras_max", arts["keras"], {"pooling": "max"}), ("keras_lme", arts["keras"], {"pooling": "lme"}),
             ("keras_overlap_1s", arts["keras"], {"overlap": 1.0})]
    for name, path, kw in runs:
        t0 = time.time()
        res = evaluate_audio_artifact(path, test_dir, progress=False, **kw)
        seconds = time.time() - t0
        write_reports(res, outdir / "evaluation" / name)
        m = res.metrics
        rows[name] = {
            "artifact": path.name, "runtime": res.info["runtime"], "pooling": res.pooling,
            "overlap_s": res.info["overlap_s"], "sigmoid_applied": res.info["apply_sigmoid"],
            "files": len(res.file_ids), "chunks": res.total_chunks, "failed_chunks": res.failed_chunks,
            **res.headline, "eer": m["det"]["eer"], "top1_accuracy": m["confusion"]["accuracy"],
            "best_global_threshold": m["optimised_thresholds"]["global"],
            "per_species_ap": {r["class"]: [r["ap"], r["ap_ci_low"], r["ap_ci_high"]] for r in m["per_class"]}
            if m.get("species_report") else None,
            "model_config": res.info["model_config"], "latency": res.latency, "seconds": seconds,
        }
    return {"demo": {k: v for k, v in demo.items() if not k.endswith(("_path", "_dir"))}, "evaluations": rows}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temporary one)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if a.keep:
        res = run(Path(a.keep))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            res = run(Path(tmp))
    res.update(command="python benchmarks/evaluate_demo.py", cpus=os.cpu_count(), machine=platform.machine(),
               python=sys.version.split()[0])
    dest = Path(__file__).parent / "results" / "evaluate_demo.json"
    dest.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res["evaluations"], indent=2))

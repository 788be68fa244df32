"""Keras -> ONNX: which converter, and which layers stay float in the quantized artifacts (docs/dev/onnx-keras.md).

For tiny trained DS-CNNs (the recipe of tests/exporters/test_keras_onnx.py; trained here unless --model is
given), against the Keras model on 128 synthetic chunks (silence, -60 dB and -80 dB first):

1. tf2onnx ``from_function`` (edgeport's route) vs Keras's own ``model.export(format="onnx")``: time, max diff,
   opset, output names.
2. Every ONNX format with edgeport's defaults, and the INT8 formats with other float-layer choices:
   nothing float, the frontend float, frontend + stem float (default); static QDQ over Conv/MatMul only,
   over the element-wise and pooling ops too (default for audio models), and over every op type (Sigmoid,
   the normalisation's ReduceMax/Div included).

    .venv/bin/python benchmarks/onnx_keras_routes.py [--model X.keras ...] [--alpha 1.0 0.25]

Writes benchmarks/results/onnx_keras_routes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
OUT = HERE / "results" / "onnx_keras_routes.json"

FRONTEND = ("mel_mixer", "frontend_normalize", "mag_pwl", "mag_pcen", "mag_db")


def train_models(work: Path, alphas: list[float]) -> list[Path]:
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.training.config import TrainConfig
    from edgeport.training.trainer import train
    from tests.exporters.test_keras_onnx import TRAIN

    data = work / "data"
    generate_dataset(data, SyntheticSpec(n_species=3, files_per_class=20, noise_files=10, duration=1.0,
                                         sample_rate=16000, difficulty=0.0, snr_db=(5.0, 20.0)), seed=3)
    paths = []
    for alpha in alphas:
        for fe, mag in (("hybrid", "pwl"), ("log_mel", "none")):
            p = work / f"{fe}_a{alpha}" / "tiny.keras"
            train(TrainConfig(data_path_train=str(data), checkpoint_path=str(p), audio_frontend=fe, mag_scale=mag,
                              **{**TRAIN, "alpha": alpha}))
            paths.append(p)
    return paths


def measure(path: Path, work: Path) -> dict:
    import onnx
    import onnxruntime as ort

    from edgeport.exporters import FORMATS, ExportOptions, gate_for, get_exporter
    from edgeport.exporters.onnx import source_onnx
    from edgeport.families.audio.loading import load_trained_model
    from edgeport.runtimes import open_runner
    from edgeport.runtimes.keras import KerasRunner
    from edgeport.sources.base import ModelHandle, TensorSpec
    from edgeport.validation import compare
    from tests.exporters.test_keras_onnx import _chunks

    model, cfg = load_trained_model(path)
    calib, ref_x = _chunks(cfg, 64, 1, hard=False), _chunks(cfg, 128, 2, hard=True)
    handle = ModelHandle("tiny", "keras", model, inputs=(TensorSpec("input", (None, *cfg.input_shape)),),
                         outputs=(TensorSpec("sigmoid", (None, cfg.num_classes)),),
                         calibration_inputs=lambda n, s: {"input": calib[:n]})
    ref, _ = KerasRunner.from_handle(handle).run({"input": ref_x})
    res: dict = {"model": str(path), "frontend": cfg.audio_frontend, "alpha": cfg.alpha,
                 "parameters": int(model.count_params()), "input_shape": list(cfg.input_shape), "rows": len(ref_x)}

    # 1. converters
    t0 = time.perf_counter()
    proto = source_onnx(handle, ExportOptions(), {})
    t_tf2onnx = time.perf_counter() - t0
    s = ort.InferenceSession(proto.SerializeToString())
    d1 = float(np.abs(s.run(None, {"input": ref_x})[0] - ref["sigmoid"]).max())
    k_path = work / "keras_export.onnx"
    t0 = time.perf_counter()
    model.export(str(k_path), format="onnx", verbose=False)
    t_keras = time.perf_counter() - t0
    kp = onnx.load_model(str(k_path))
    s = ort.InferenceSession(str(k_path))
    d2 = float(np.abs(s.run(None, {s.get_inputs()[0].name: ref_x})[0] - ref["sigmoid"]).max())
    res["converters"] = {
        "tf2onnx.from_function": {"seconds": round(t_tf2onnx, 2), "max_abs_diff": d1,
                                  "opset": proto.opset_import[0].version,
                                  "outputs": [o.name for o in proto.graph.output]},
        "keras model.export(onnx)": {"seconds": round(t_keras, 2), "max_abs_diff": d2,
                                     "opset": next(o.version for o in kp.opset_import if o.domain in ("", "ai.onnx")),
                                     "outputs": [o.name for o in kp.graph.output]},
    }

    # 2. formats and float-layer choices
    all_ops = sorted({n.op_type for n in proto.graph.node})
    from edgeport.exporters.onnx import STATIC_OP_TYPES

    conv = {"static_op_types": list(STATIC_OP_TYPES)}
    variants = [("onnx", "default", {}, "minmax"), ("onnx_fp16", "default", {}, "minmax"),
                ("onnx_int8", "nothing float", {"onnx_float_layers": ()}, "minmax"),
                ("onnx_int8", "frontend float", {"onnx_float_layers": FRONTEND}, "minmax"),
                ("onnx_int8", "frontend + stem float (default)", {}, "minmax"),
                ("onnx_int8_static", "nothing float, Conv/MatMul only", {**conv, "onnx_float_layers": ()}, "minmax"),
                ("onnx_int8_static", "frontend float, Conv/MatMul only", {**conv, "onnx_float_layers": FRONTEND},
                 "minmax"),
                ("onnx_int8_static", "frontend + stem float, Conv/MatMul only", conv, "minmax")]
    variants += [("onnx_int8_static", "frontend + stem float, + element-wise/pooling (default)", {}, m)
                 for m in ("minmax", "percentile", "entropy")]
    variants += [("onnx_int8_static", "every op type, nothing float", {"onnx_float_layers": (),
                                                                     "static_op_types": all_ops}, "minmax"),
                 ("onnx_int8_static", "every op type, frontend + stem float", {"static_op_types": all_ops}, "minmax")]
    rows = []
    for fmt_name, label, extra, method in variants:
        fmt = FORMATS.get(fmt_name)
        p = work / f"{fmt_name}.onnx"
        t0 = time.perf_counter()
        notes = get_exporter(fmt)(handle, fmt=fmt, path=p, options=ExportOptions(
            calibration_samples=len(calib), calibration_method=method, **extra))
        sec = time.perf_counter() - t0
        got, failed = open_runner("onnxruntime", p).run({"input": ref_x})
        c = compare(ref, got, gate_for(fmt_name), failed=failed)
        m = c.outputs.get("sigmoid")
        row = {"format": fmt_name, "float_layers": label, "calibration": method if fmt_name.endswith("static") else None,
               "passed": c.passed, "failed_rows": c.failed_rows, "bytes": p.stat().st_size, "seconds": round(sec, 1),
               "nodes_kept_float": len(notes.get("nodes_kept_float", []))}
        if m is not None:
            row.update({"max_abs_diff": m.max_abs_diff, "cosine_mean": m.cosine_mean, "cosine_worst": m.cosine_worst,
                        "centred_pearson": m.centred_pearson, "top1_agreement": m.top1_agreement})
        rows.append(row)
        print(json.dumps(row), flush=True)
    res["formats"] = rows
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="*", help="trained .keras files (with X_model_config.json); default: train")
    ap.add_argument("--alpha", nargs="*", type=float, default=[1.0, 0.25])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ep-keras-onnx-") as tmp:
        work = Path(tmp)
        paths = [Path(p) for p in a.model] if a.model else train_models(work, a.alpha)
        results = [measure(p, work) for p in paths]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "command": "python benchmarks/onnx_keras_routes.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(), "models": results,
    }, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

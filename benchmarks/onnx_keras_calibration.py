"""Peak memory of ONNX static calibration (MinMax / Percentile / Entropy) on a default-size DS-CNN.

SPEC §4: ONNX Runtime's Percentile and Entropy calibrators keep every intermediate output of every sample in
memory; edgeport streams the rows in strides (``exporters.onnx.CALIBRATION_STRIDE``). This builds a
default-size DS-CNN (hybrid frontend, alpha 1.0, 24 kHz, 3 s, 264 x 256 input; weights untrained: memory
depends on shapes, not values), converts it to ONNX FP32 once (tf2onnx), then runs ``onnx_int8_static``
for each method in a fresh process and records that process's peak RSS, streamed and (on fewer rows, to keep
the machine alive) as ONNX Runtime does it without streaming.

    .venv/bin/python benchmarks/onnx_keras_calibration.py [--rows 256] [--unstreamed-rows 32]

Writes benchmarks/results/onnx_keras_calibration.json.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "onnx_keras_calibration.json"


def _status_mb(key: str) -> float:
    """VmRSS / VmHWM of this process (VmHWM is reset by exec; ru_maxrss keeps the forking parent's peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(work: Path, method: str, rows: int, stride: int) -> None:
    """Quantize the saved FP32 graph in this process; print one JSON line."""
    from types import SimpleNamespace

    import onnx

    from edgeport.exporters import onnx as onnx_exp
    from edgeport.exporters.base import ExportOptions
    from edgeport.sources.base import ModelHandle, TensorSpec

    meta = json.loads((work / "meta.json").read_text())
    model = onnx.load_model(str(work / "fp32.onnx"))
    calib = np.load(work / "calib.npy", mmap_mode="r")[:rows]
    calib = np.ascontiguousarray(calib)
    layers = SimpleNamespace(layers=[SimpleNamespace(name=n) for n in meta["layers"]])
    handle = ModelHandle("dscnn", "keras", layers, inputs=(TensorSpec("input", (None, *meta["input_shape"])),),
                         outputs=(TensorSpec("sigmoid", (None, meta["num_classes"])),),
                         calibration_inputs=lambda n, s: {"input": calib[:n]})
    opts = ExportOptions(calibration_method=method, calibration_samples=rows,
                         calibration_stride=stride)
    before = _status_mb("VmRSS")
    t0 = time.perf_counter()
    notes: dict = {}
    out = onnx_exp.to_int8_static(model, handle, opts, notes)
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    print(json.dumps({"method": method, "rows": rows, "stride": notes["calibration_stride"],
                      "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
                      "calibration_mb": round(peak - before, 1), "seconds": round(seconds, 1),
                      "qdq_nodes": sum(1 for n in out.graph.node if n.op_type == "QuantizeLinear")}))


def prepare(work: Path, rows: int) -> dict:
    from edgeport.audio.synthetic import CallSynth, SyntheticSpec, make_clip
    from edgeport.exporters.base import ExportOptions
    from edgeport.exporters.onnx import source_onnx
    from edgeport.families.audio import AudioModelConfig
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.dscnn import build_model
    from edgeport.sources.base import ModelHandle, TensorSpec

    names = tuple(f"species_{i}" for i in range(8))  # the synthesiser has 8 call types
    cfg = AudioModelConfig(num_classes=len(names), class_names=names)  # seed defaults: hybrid, alpha 1.0
    model = build_model(cfg)
    handle = ModelHandle("dscnn", "keras", model, inputs=(TensorSpec("input", (None, *cfg.input_shape)),),
                         outputs=(TensorSpec("sigmoid", (None, cfg.num_classes)),))
    notes: dict = {}
    t0 = time.perf_counter()
    proto = source_onnx(handle, ExportOptions(), notes)
    import onnx

    onnx.save_model(proto, str(work / "fp32.onnx"))
    convert_s = time.perf_counter() - t0
    spec = SyntheticSpec(n_species=len(names), duration=cfg.chunk_duration, sample_rate=cfg.sample_rate)
    synth, rng = CallSynth(spec), np.random.default_rng(0)
    x = np.stack([features(make_clip(synth, int(rng.integers(0, len(names))), rng)[: cfg.chunk_samples],
                                      cfg) for _ in range(rows)]).astype(np.float32)
    np.save(work / "calib.npy", x)
    meta = {"input_shape": list(cfg.input_shape), "num_classes": cfg.num_classes,
            "layers": [layer.name for layer in model.layers], "parameters": int(model.count_params()),
            "fp32_onnx_bytes": (work / "fp32.onnx").stat().st_size, "tf2onnx_seconds": round(convert_s, 1),
            "calibration_row_bytes": int(x[0].nbytes)}
    (work / "meta.json").write_text(json.dumps(meta))
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="256,1024",
                    help="calibration rows, streamed (256: ExportOptions default; 1024: --num-samples default)")
    ap.add_argument("--unstreamed-rows", default="32,64",
                    help="rows for runs without streaming (ONNX Runtime's own behaviour; memory grows per row)")
    ap.add_argument("--methods", default="minmax,percentile,entropy")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(Path(a.child[0]), a.child[1], int(a.child[2]), int(a.child[3]))
        return
    from edgeport.exporters.onnx import CALIBRATION_STRIDE

    runs = []
    with tempfile.TemporaryDirectory(prefix="ep-calib-") as tmp:
        work = Path(tmp)
        rows = [int(r) for r in a.rows.split(",")]
        unstreamed = [int(r) for r in a.unstreamed_rows.split(",")]
        meta = prepare(work, max(rows + unstreamed))
        print(f"default DS-CNN: {meta['parameters']:,} parameters, input {meta['input_shape']}, "
              f"ONNX {meta['fp32_onnx_bytes']:,} bytes", flush=True)
        methods = a.methods.split(",")
        plan = [(m, r, CALIBRATION_STRIDE) for r in rows for m in methods]
        plan += [(m, r, r) for r in unstreamed for m in methods]
        for method, rows, stride in plan:
            p = subprocess.run([sys.executable, __file__, "--child", str(work), method, str(rows), str(stride)],
                               capture_output=True, text=True, check=False)
            line = next((ln for ln in reversed(p.stdout.splitlines()) if ln.startswith("{")), None)
            if line is None:
                print(p.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{method} rows={rows} stride={stride} failed")
            r = json.loads(line)
            r["streamed"] = r["stride"] < rows
            runs.append(r)
            print(json.dumps(r), flush=True)
    result = {
        "command": "python benchmarks/onnx_keras_calibration.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": meta,
        "runs": runs,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

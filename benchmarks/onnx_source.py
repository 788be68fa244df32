"""An ONNX file written by another tool as an export source, and ``edgeport validate`` on it (issue 14, items 1-2).

The model is the tests' ``third_party_model`` (``onnx.helper``: two inputs ``a`` [1, 8] and ``b`` [1, 4], a fixed
batch of 1, weights in an external data file; outputs ``logits`` [1, 5] and a sigmoid head ``probs`` [1, 3]).

1. ``edgeport export third_party.onnx --formats all --calibration-inputs cal.npz``: per format status, size,
   max abs diff, mean cosine against the source in ONNX Runtime, export seconds (from manifest.json).
2. ``edgeport validate third_party.tflite --reference third_party.onnx`` (exit code, gate inferred) and the
   same TFLite against a different model (seed 1).
3. Full-integer TFLite calibration of this batch-1 model: ai-edge-quantizer's moving-average min/max (its
   default, what PyTorch sources use) against the true min/max over all samples (what ONNX sources use:
   ``exporters.tflite._calibrate``), each judged by the comparator on the export's reference inputs.

    PYTHONHASHSEED=0 .venv/bin/python benchmarks/onnx_source.py

Writes benchmarks/results/onnx_source.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests._support.onnx_models: the model the tests use
OUT = HERE / "results" / "onnx_source.json"


def main() -> None:
    from edgeport.cli.main import main as cli
    from edgeport.exporters import ExportOptions, gate_for, tflite_common
    from edgeport.runtimes import open_runner
    from edgeport.sources import load_source
    from edgeport.validation import compare
    from tests._support import onnx_models

    result: dict = {"command": "PYTHONHASHSEED=0 .venv/bin/python benchmarks/onnx_source.py",
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                "load_1min": round(os.getloadavg()[0], 2)},
                    "model": "tests/_support/onnx_models.third_party_model (batch 1, external data, opset 17)"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = onnx_models.third_party_model(tmp / "src" / "third_party.onnx")
        np.savez(tmp / "cal.npz", **onnx_models.feeds(128, 5))
        out = tmp / "exports"
        t0 = time.perf_counter()
        code = cli(["export", str(src), "--formats", "all", "--calibration-inputs", str(tmp / "cal.npz"),
                    "--outdir", str(out)])
        manifest = json.loads((out / "manifest.json").read_text())
        result["export"] = {
            "exit_code": code, "seconds": round(time.perf_counter() - t0, 1),
            "artifacts": {a["format"]: {
                "status": a["status"], "size_bytes": a["size_bytes"], "export_seconds": a["export_seconds"],
                "max_abs_diff": (a["validation"] or {}).get("outputs", {}).get("logits", {}).get("max_abs_diff"),
                "cosine_mean_logits": (a["validation"] or {}).get("outputs", {}).get("logits", {}).get("cosine_mean"),
                "cosine_mean_probs": (a["validation"] or {}).get("outputs", {}).get("probs", {}).get("cosine_mean"),
                "route": a["notes"].get("route"),
            } for a in manifest["artifacts"]},
        }
        other = onnx_models.third_party_model(tmp / "other" / "other.onnx", seed=1)
        result["validate"] = {
            "tflite_vs_source_exit": cli(["validate", str(out / "third_party.tflite"), "--reference", str(src),
                                          "--report-json", str(tmp / "v1.json")]),
            "tflite_vs_other_model_exit": cli(["validate", str(out / "third_party.tflite"), "--reference",
                                               str(other), "--report-json", str(tmp / "v2.json")]),
        }
        for key, f in (("same", "v1.json"), ("other", "v2.json")):
            v = json.loads((tmp / f).read_text())
            art = next(iter(v["artifacts"].values()))
            result["validate"][key] = {"gate": v["artifact"]["format"], "gate_source": v["artifact"]["gate_source"],
                                       "passed": v["all_passed"],
                                       "max_abs_diff_logits": art["outputs"]["logits"]["max_abs_diff"]}

        handle = load_source(src)
        handle.calibration_inputs = lambda n, s: {k: v[:n] for k, v in onnx_models.feeds(128, 5).items()}
        float_tfl = (out / "third_party.tflite").read_bytes()
        feeds = handle.reference_inputs(200, 0)
        reference = onnx_models.ort_outputs(src, feeds)
        calib: dict = {}
        for label, h in (("moving_average (ai-edge-quantizer default)", dataclasses.replace(handle, framework="torch")),
                         ("min_max (ONNX sources)", handle)):
            data = tflite_common.quantize_full_int8(float_tfl, h, ExportOptions(calibration_samples=128), keep_regexes=[],
                                          notes={}, batch=1)
            path = tmp / "q.tflite"
            path.write_bytes(data)
            got, failed = open_runner("litert", path).run(feeds)
            cmp = compare(reference, got, gate_for("tflite_int8_full"), failed=failed)
            calib[label] = {"passed": cmp.passed, **{f"{k}_cosine_mean": round(m.cosine_mean, 5)
                                                     for k, m in cmp.outputs.items()},
                            **{f"{k}_pearson": round(m.pearson, 5) for k, m in cmp.outputs.items()}}
        result["tflite_int8_full_calibration"] = calib
    OUT.parent.mkdir(parents=True, exist_ok=True)
    from edgeport.fileio import atomic_write_json

    atomic_write_json(OUT, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

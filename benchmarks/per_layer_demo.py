"""Per-layer error of the demo's audio DS-CNN in ``tflite_int8_full`` and ``onnx_int8_static``, and the
auto-fallback on the geo model's static INT8 without the family's float encoding (issue 14, items 3-4;
docs/per-layer.md).

Audio: the demo's DS-CNN trained on the demo's synthetic folder (``convert_audio.train_model("demo")``, reused
from ``--keep DIR``), calibrated and validated on that folder as ``edgeport export --data-path-train`` does.
Each quantized artifact is judged by the comparator against Keras and reported layer by layer
(``validation.per_layer``) against the float artifact of its backend; the TFLite one also through TF's
QuantizationDebugger (each op on its own inputs), for comparison.

Geo: a non-trivial geo checkpoint (64 species, scale 0.25, the tests' fixture settings) exported to
``onnx_int8_static`` with ``keep_float`` emptied (no float harmonic encoding), with the default op types and
with every op type of the graph (what ONNX Runtime quantizes when not told otherwise), each through
``exporters.fallback.fallback_export`` (budget 3).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/per_layer_demo.py [--keep DIR] [--rows 24]

Writes benchmarks/results/per_layer_demo.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

TOP = 12


def _rows(report, n: int = TOP) -> list[dict]:
    keep = ("layer", "op", "quantized", "sqnr_db", "loss_db", "rmse_over_scale", "scale", "local_sqnr_db",
            "weight_sqnr_db", "tensor")
    return [{k: getattr(r, k) for k in keep} for r in report.rows[:n]]


def audio(root: Path, rows: int) -> dict:
    import convert_audio
    import numpy as np

    from edgeport.exporters import FORMATS, ExportOptions, gate_for, get_exporter
    from edgeport.runtimes import open_runner, runner_class
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data
    from edgeport.validation import compare
    from edgeport.validation.per_layer import per_layer, tflite_debugger_report

    log = logging.getLogger("per_layer_demo")
    train_dir, _ = convert_audio.ensure_data(root)
    model = convert_audio.train_model("demo", root, train_dir, None, None)
    handle = load_source(Path(model["model_path"]), model_config=model["model_config_path"])
    attach_audio_data(handle, train_dir, progress=False)
    options = ExportOptions(work_dir=root / "work")
    (root / "work").mkdir(exist_ok=True)
    feeds = handle.reference_inputs(200, 0)
    reference, failed = runner_class("keras").from_handle(handle).run(feeds)
    assert not failed.any()
    small = {k: np.asarray(v)[:rows] for k, v in feeds.items()}
    layers = [layer.name for layer in handle.model.layers]
    out = {"model": model, "reference_rows": int(next(iter(feeds.values())).shape[0]), "per_layer_rows": rows}
    for fmt_name, float_name in (("tflite_int8_full", "tflite"), ("onnx_int8_static", "onnx")):
        log.info("audio %s", fmt_name)
        fmt, ffmt = FORMATS.get(fmt_name), FORMATS.get(float_name)
        qpath = root / "work" / f"demo_{fmt_name}{fmt.extension}"
        fpath = root / "work" / f"demo_{float_name}{ffmt.extension}"
        t0 = time.perf_counter()
        notes = get_exporter(fmt)(handle, fmt=fmt, path=qpath, options=options)
        get_exporter(ffmt)(handle, fmt=ffmt, path=fpath, options=options)
        export_s = time.perf_counter() - t0
        got, failed = open_runner(fmt.runtime, qpath).run(feeds)
        cmp = compare(reference, got, gate_for(fmt_name), failed=failed)
        t0 = time.perf_counter()
        rep = per_layer(qpath, fpath, small, layers=layers)
        entry = {"export_seconds": round(export_s, 1), "per_layer_seconds": round(time.perf_counter() - t0, 1),
                 "size_bytes": qpath.stat().st_size, "passed": cmp.passed, "headline": cmp.headline(),
                 "failures": cmp.failures, "float_layers": notes.get("float_layers") or notes.get("nodes_kept_float"),
                 "ops_reported": len(rep.rows), "unmatched": rep.unmatched, "tool": rep.tool,
                 "layers_worst_first": rep.layers()[:TOP], "worst_rows": _rows(rep)}
        print(rep.table(TOP))
        if fmt_name == "tflite_int8_full":
            t0 = time.perf_counter()
            samples = handle.calibration_inputs(options.calibration_samples, 0)[handle.input_names[0]]
            dbg = tflite_debugger_report(handle, samples, small, float_layers=tuple(notes.get("float_layers") or ()))
            print(dbg.table(TOP))
            entry["quantization_debugger"] = {"seconds": round(time.perf_counter() - t0, 1), "tool": dbg.tool,
                                              "layers_worst_first": dbg.layers()[:TOP], "worst_rows": _rows(dbg)}
        out[fmt_name] = entry
    return out


def geo(root: Path, steps: int) -> dict:
    import onnx

    from edgeport.exporters import ExportOptions
    from edgeport.exporters.fallback import fallback_export
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.sources import load_source

    log = logging.getLogger("per_layer_demo")
    ckpt = root / "geo" / "checkpoint_best.pt"
    fit = None
    if not ckpt.exists():
        fit = make_geo_checkpoint(ckpt, n_species=64, model_scale=0.25, steps=steps, seed=0)
    out: dict = {"checkpoint": {"n_species": 64, "model_scale": 0.25, "steps": steps,
                                "fit": {k: v for k, v in (fit or {}).items() if isinstance(v, (int, float, bool))}}}
    for case in ("default_op_types", "every_op_type"):
        handle = load_source(ckpt)
        out["family_keep_float"] = list(handle.keep_float)
        handle.keep_float = ()  # without the family's float encoding
        extra = {}
        if case == "every_op_type":
            from edgeport.exporters.onnx import source_onnx

            graph = source_onnx(handle, ExportOptions())
            extra["static_op_types"] = sorted({n.op_type for n in graph.graph.node} - {"Constant"})
        log.info("geo onnx_int8_static, %s", case)
        t0 = time.perf_counter()
        res = fallback_export(handle, "onnx_int8_static", work_dir=root / "geo" / case,
                              options=ExportOptions(**extra), budget=3)
        print(res.table())
        d = res.to_dict()
        d["seconds"] = round(time.perf_counter() - t0, 1)
        d["static_op_types"] = extra.get("static_op_types", "default (Conv, ConvTranspose, Gemm, MatMul)")
        d["nodes_in_graph"] = len(onnx.load_model(str(res.artifact)).graph.node)
        if d.get("per_layer_int8") is None and res.steps:
            d["per_layer_int8_note"] = "the plain INT8 artifact passed: no per-layer report was needed"
        out[case] = d
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it (models reused on a rerun)")
    ap.add_argument("--rows", type=int, default=24, help="reference rows of the audio per-layer reports")
    ap.add_argument("--geo-steps", type=int, default=300)
    ap.add_argument("--skip", choices=("audio", "geo"), default=None)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "per_layer_demo.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from edgeport.fileio import atomic_write_json
    from edgeport.reporting import framework_versions

    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgeport-per-layer-")
        root = Path(tmp.name)
    else:
        root = args.keep.resolve()
        root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = {"benchmark": "per_layer_demo", "command": " ".join(["python", "benchmarks/per_layer_demo.py",
                                                                   *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "machine": platform.machine(),
              "python": platform.python_version(), "load_avg_start": os.getloadavg(), "versions": framework_versions()}
    if args.skip and args.out.is_file():  # the skipped part is kept from the earlier run, with its command
        import json

        earlier = json.loads(args.out.read_text())
        kept = {"audio": "audio_demo", "geo": "geo"}[args.skip]
        if kept in earlier:
            result[kept] = earlier[kept]
            result[f"{kept}_from"] = {"command": earlier.get("command"), "date": earlier.get("date")}
    if args.skip != "audio":
        result["audio_demo"] = audio(root, args.rows)
    if args.skip != "geo":
        result["geo"] = geo(root, args.geo_steps)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

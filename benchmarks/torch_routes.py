"""Measure the choices behind edgeport's PyTorch exporters on a geo model (docs/dev/tflite-route.md, docs/dev/fp16.md).

For the geo family's synthetic checkpoint (default) or the tests' geo-like module (``--model geolike``):
- ONNX FP16: which nodes stay FP32 (none / fragile ops / keep_float encoding / both; FP16 I/O);
- ONNX INT8 dynamic: per-channel vs per-tensor, reduce_range, keep_float;
- ONNX INT8 static: op types, calibration methods;
- PyTorch -> TFLite: litert-torch (+ ai-edge-quantizer) vs torch -> ONNX -> onnx2tf, FP32/FP16/INT8:
  seconds, max/mean diff vs torch, builtin-only, batch behaviour, size;
- SavedModel (ONNX -> onnx2tf, re-signed) and the full-integer TFLite attempt.
Writes JSON to benchmarks/results/torch_routes_<model>.json.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/torch_routes.py [--model geo|geolike] [--species 200 --scale 0.25]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 200


def _handle(args, work: Path):
    if args.model == "geolike":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _support.torch_models import geo_handle

        return geo_handle(), {"model": "tests/_support GeoLike (300 species, dim 128, 2 blocks)"}
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.sources import load_source

    fit = make_geo_checkpoint(work / "ckpt" / "checkpoint_best.pt", n_species=args.species, model_scale=args.scale,
                              steps=args.steps, seed=0)
    h = load_source(work / "ckpt" / "checkpoint_best.pt")
    info = {"model": f"geo family synthetic checkpoint: {args.species} species, scale {args.scale}, "
                     f"{args.steps} fit steps", "non_trivial": fit.get("non_trivial"),
            "prob_min": fit.get("prob_min"), "prob_max": fit.get("prob_max"), "params": fit.get("params")}
    return h, info


def _torch_out(h, feeds):
    from edgeport.runtimes.torch import TorchRunner

    return TorchRunner.from_handle(h).run(feeds)[0]


def _diff(ref, out) -> dict:
    d = max(float(np.abs(np.asarray(out[k], np.float64) - ref[k]).max()) for k in ref)
    m = max(float(np.abs(np.asarray(out[k], np.float64) - ref[k]).mean()) for k in ref)
    return {"max_abs_diff": round(d, 7), "mean_abs_diff": round(m, 8)}


def _run_onnx(model, feeds, path: Path):
    import onnx

    from edgeport.runtimes.onnxruntime import OrtRunner

    onnx.save(model, str(path))
    r = OrtRunner.open(path)
    return r.run(feeds)[0], path.stat().st_size


def onnx_choices(h, feeds, ref, work: Path) -> dict:
    from edgeport.exporters import ExportOptions, onnx_graph
    from edgeport.exporters import onnx as ox

    res: dict = {}
    t = time.perf_counter()
    m = ox.source_onnx(h, ExportOptions())
    res["export_seconds"] = round(time.perf_counter() - t, 2)
    out, size = _run_onnx(m, feeds, work / "fp32.onnx")
    res["fp32"] = {**_diff(ref, out), "bytes": size}
    enc = ox.keep_float_nodes(m, h.keep_float)
    fp16 = {}
    for label, keep, ops, io in [
        ("nothing kept FP32", [], [], False),
        ("fragile ops (LayerNorm, reductions) FP32", [], ox.FP16_FRAGILE_OPS, False),
        ("keep_float encoding FP32", enc, [], False),
        ("encoding + fragile ops FP32 (edgeport default)", enc, ox.FP16_FRAGILE_OPS, False),
        ("encoding + fragile ops FP32, FP16 I/O", enc, ox.FP16_FRAGILE_OPS, True),
        ("nothing kept FP32, FP16 I/O", [], [], True),
    ]:
        mm, info = ox.convert_fp16(m, keep_nodes=keep, block_ops=ops, fp16_io=io)
        out, size = _run_onnx(mm, feeds, work / "fp16.onnx")
        fp16[label] = {**_diff(ref, out), "bytes": size, "nodes_fp32": len(info["nodes_kept_fp32"]),
                       "roundtrips_removed": info["fp16_roundtrips_removed"]}
    res["fp16"] = fp16
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dyn = {}
    base = onnx_graph.gemm_to_matmul(ox._clean_for_quant(m))
    src = work / "q_src.onnx"
    onnx.save(base, str(src))
    kept = ox.keep_float_nodes(base, h.keep_float)
    for label, pc, rr, excl in [("per-channel, reduce_range, encoding float (default)", True, True, kept),
                                ("per-tensor, reduce_range", False, True, kept),
                                ("per-channel, full range", True, False, kept),
                                ("per-tensor, full range", False, False, kept)]:
        dst = work / "q.onnx"
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=pc, reduce_range=rr,
                         nodes_to_exclude=excl or None)
        out, size = _run_onnx(onnx.load(str(dst)), feeds, work / "q_run.onnx")
        dyn[label] = {**_diff(ref, out), "bytes": size}
    res["int8_dynamic"] = dyn
    st = {}
    from edgeport.exporters.base import ExportOptions as EO

    for label, method, op_types in [("minmax, Gemm/MatMul/Conv (default)", "minmax", ox.STATIC_OP_TYPES),
                                    ("percentile, Gemm/MatMul/Conv", "percentile", ox.STATIC_OP_TYPES),
                                    ("entropy, Gemm/MatMul/Conv", "entropy", ox.STATIC_OP_TYPES),
                                    ("minmax, all op types", "minmax", None)]:
        extra = {"static_op_types": op_types} if op_types else {"static_op_types": []}
        notes: dict = {}
        t = time.perf_counter()
        try:
            q = ox.to_int8_static(m, h, EO(calibration_method=method, calibration_samples=256, **extra), notes)
            out, size = _run_onnx(q, feeds, work / "qs.onnx")
            st[label] = {**_diff(ref, out), "bytes": size, "seconds": round(time.perf_counter() - t, 2)}
        except Exception as e:  # noqa: BLE001 - a benchmark records failures
            st[label] = {"error": str(e)[:200]}
    res["int8_static"] = st
    return res


def _tflite_eval(data: bytes, feeds, ref, path: Path) -> dict:
    from edgeport.exporters.tflite_common import tflite_op_names
    from edgeport.runtimes.litert import LiteRTRunner

    path.write_bytes(data)
    ops = tflite_op_names(data)
    r = LiteRTRunner.open(path)
    out, _failed = r.run(feeds)
    if set(out) != set(ref) and len(out) == len(ref) == 1:  # onnx2tf names its output "output_0"/"Identity"
        out = {next(iter(ref)): next(iter(out.values()))}
    return {**_diff(ref, out), "bytes": len(data), "builtin_only": not any(o.startswith("CUSTOM") for o in ops),
            "custom_ops": sorted({o for o in ops if o.startswith("CUSTOM")}), "fixed_batch": r.fixed_batch,
            "output_names": list(r.output_names), "io": {**r.input_dtypes, **r.output_dtypes}}


def tflite_routes(h, feeds, ref, work: Path) -> dict:
    from edgeport.exporters import _onnx2tf_compat, _torch_compat, tflite_common

    res: dict = {"litert_torch": {}, "onnx2tf": {}}
    keep = [_torch_compat.tflite_scope_regex(f"{_torch_compat.WRAPPED_ATTR}.{p}") for p in h.keep_float]
    t = time.perf_counter()
    fp32 = _torch_compat.litert_convert(h, batch=1)
    conv = time.perf_counter() - t
    res["litert_torch"]["fp32"] = {"seconds": round(conv, 2), **_tflite_eval(fp32, feeds, ref, work / "a.tflite")}
    for kind in ("fp16", "int8_dynamic"):
        for label, k in (("keep_float", keep), ("no keep_float", [])):
            t = time.perf_counter()
            q = tflite_common.quantize(fp32, kind, keep_regexes=k)
            res["litert_torch"][f"{kind} ({label})"] = {"seconds": round(conv + time.perf_counter() - t, 2),
                                                        **_tflite_eval(q, feeds, ref, work / "a.tflite")}
    # route B: torch -> ONNX -> onnx2tf
    import onnx

    from edgeport.exporters import ExportOptions
    from edgeport.exporters import onnx as ox

    t = time.perf_counter()
    m = ox.source_onnx(h, ExportOptions())
    d = work / "o2t"
    d.mkdir()
    onnx.save(m, str(d / "m.onnx"))
    with _onnx2tf_compat.offline_onnx2tf(d) as onnx2tf, _torch_compat.quiet():
        onnx2tf.convert(input_onnx_file_path=str(d / "m.onnx"), output_folder_path=str(d / "out"),
                        output_signaturedefs=True, replace_to_pseudo_operators=["erf"], non_verbose=True,
                        output_dynamic_range_quantized_tflite=True)
    conv = time.perf_counter() - t
    for label, fn in (("fp32", "m_float32.tflite"), ("fp16", "m_float16.tflite"),
                      ("int8_dynamic", "m_dynamic_range_quant.tflite")):
        try:
            res["onnx2tf"][label] = {"seconds (all three files)": round(conv, 2),
                                     **_tflite_eval((d / "out" / fn).read_bytes(), feeds, ref, work / "b.tflite")}
        except Exception as e:  # noqa: BLE001
            res["onnx2tf"][label] = {"error": str(e)[:200]}
    # route B without the erf workaround: does exact GELU stay builtin?
    d2 = work / "o2t_noerf"
    d2.mkdir()
    onnx.save(m, str(d2 / "m.onnx"))
    try:
        with _onnx2tf_compat.offline_onnx2tf(d2) as onnx2tf, _torch_compat.quiet():
            onnx2tf.convert(input_onnx_file_path=str(d2 / "m.onnx"), output_folder_path=str(d2 / "out"),
                            output_signaturedefs=True, non_verbose=True)
        ops = tflite_common.tflite_op_names((d2 / "out" / "m_float32.tflite").read_bytes())
        res["onnx2tf"]["fp32 without replace_to_pseudo_operators"] = {
            "custom_ops": sorted({o for o in ops if o.startswith("CUSTOM")})}
    except Exception as e:  # noqa: BLE001
        res["onnx2tf"]["fp32 without replace_to_pseudo_operators"] = {"error": str(e)[:200]}
    shutil.rmtree(d, ignore_errors=True)
    return res


def full_int8(h, feeds, ref, work: Path) -> dict:
    from edgeport.exporters import FORMATS, ExportOptions, gate_for, get_exporter
    from edgeport.runtimes import open_runner
    from edgeport.validation import compare

    spec = FORMATS.get("tflite_int8_full")
    path = work / "full.tflite"
    t = time.perf_counter()
    try:
        notes = get_exporter(spec)(h, fmt=spec, path=path, options=ExportOptions(calibration_samples=256))
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)[:300]}
    r = open_runner("litert", path)
    out, failed = r.run(feeds)
    c = compare(ref, out, gate_for("tflite_int8_full"), failed=failed)
    m = next(iter(c.outputs.values()))
    return {"seconds": round(time.perf_counter() - t, 2), "passed": c.passed, "failures": c.failures,
            "cosine_mean": m.cosine_mean, "pearson": m.pearson, "centred_pearson": m.centred_pearson,
            "top1": m.top1_agreement, "max_abs_diff": m.max_abs_diff, "io": {**r.input_dtypes, **r.output_dtypes},
            "bytes": path.stat().st_size, "ops": notes.get("ops")}


def saved_model(h, feeds, ref, work: Path) -> dict:
    from edgeport.exporters import FORMATS, ExportOptions, get_exporter
    from edgeport.runtimes import open_runner

    spec = FORMATS.get("tf")
    path = work / "saved_model"
    t = time.perf_counter()
    get_exporter(spec)(h, fmt=spec, path=path, options=ExportOptions())
    sec = time.perf_counter() - t
    r = open_runner("tf", path)
    out, _ = r.run(feeds)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {"seconds": round(sec, 2), **_diff(ref, out), "bytes": size, "inputs": [t.name for t in r.inputs],
            "outputs": list(r.output_names)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["geo", "geolike"], default="geo")
    ap.add_argument("--species", type=int, default=200)
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--skip", nargs="*", default=[], choices=["onnx", "tflite", "tf", "full"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeport-routes-"))
    try:
        h, info = _handle(args, work)
        feeds = h.reference_inputs(ROWS, 0)
        ref = _torch_out(h, feeds)
        result = {"command": "OMP_NUM_THREADS=2 .venv/bin/python " + shlex.join(sys.argv), "machine": platform.machine(),
                  "cpus": os.cpu_count(), "rows": ROWS, "keep_float": list(h.keep_float), **info}
        if "onnx" not in args.skip:
            result["onnx"] = onnx_choices(h, feeds, ref, work)
        if "tflite" not in args.skip:
            result["tflite"] = tflite_routes(h, feeds, ref, work)
        if "full" not in args.skip:
            result["tflite_int8_full"] = full_int8(h, feeds, ref, work)
        if "tf" not in args.skip:
            result["saved_model"] = saved_model(h, feeds, ref, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or Path(__file__).parent / "results" / f"torch_routes_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Which PyTorch -> TFLite route gives a dynamic batch (docs/dev/tflite-route.md, "Dynamic batch").

Routes, each measured for FP32 / FP16 / dynamic INT8 / full INT8 where it produces a file:
- ``litert_torch_dynamic``: litert-torch 0.10 with a ``torch.export.Dim`` on the batch axis;
- ``litert_torch_fixed``: litert-torch at a fixed batch of 1 (edgeport's former default), fed in chunks;
- ``savedmodel``: the SavedModel edgeport writes for ``tf`` (torch -> ONNX -> onnx2tf, re-signed) through
  ``TFLiteConverter.from_saved_model`` with builtin ops (edgeport's route now);
- ``onnx2tf_direct``: the FP32 / FP16 TFLite files onnx2tf writes itself.
FP16 / INT8 of the first three are edgeport's ai-edge-quantizer passes on the route's float flatbuffer.
Per file: export seconds, bytes, builtin-only, ``shape_signature``, rows returned for 7 inputs after a
non-strict ``resize_tensor_input``, max diff vs torch at batch 7 and batch 1, the edgeport gate, and LiteRT
latency (1 thread) at batch 1 and at batch 256 in one call (a fixed-batch file: 256 one-row calls).

    nice -n 5 .venv/bin/python benchmarks/tflite_batch_routes.py [--model geo|geolike] [--species 200 --scale 0.25]
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
PRECISIONS = ("fp32", "fp16", "int8_dynamic", "int8_full")
FORMAT = {"fp32": "tflite", "fp16": "tflite_fp16", "int8_dynamic": "tflite_int8", "int8_full": "tflite_int8_full"}


def _handle(args, work: Path):
    if args.model == "geolike":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _support.torch_models import geo_handle

        return geo_handle(), {"model": "tests/_support GeoLike (300 species, dim 128, 2 blocks)"}
    from edgeport.families.geo import make_geo_checkpoint
    from edgeport.sources import load_source

    ckpt = work / "ckpt" / "checkpoint_best.pt"
    fit = make_geo_checkpoint(ckpt, n_species=args.species, model_scale=args.scale, steps=args.steps, seed=0)
    return load_source(ckpt), {"model": f"geo family synthetic checkpoint: {args.species} species, scale "
                                        f"{args.scale}, {args.steps} fit steps", "params": fit.get("params")}


def _evaluate(data: bytes, path: Path, h, feeds, ref, fmt: str) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    from edgeport.exporters import gate_for
    from edgeport.exporters.tflite_common import tflite_op_names
    from edgeport.runtimes.litert import LiteRTRunner
    from edgeport.validation import compare

    path.write_bytes(data)
    ops = tflite_op_names(data)
    it = Interpreter(model_path=str(path))
    r = LiteRTRunner.open(path)
    seven = {k: v[:7] for k, v in feeds.items()}
    try:
        rows7 = int(next(iter(r.run_resized(seven, 7).values())).shape[0])
    except Exception as e:  # noqa: BLE001 - recorded
        rows7 = f"error: {str(e)[:120]}"
    out = {"bytes": len(data), "builtin_only": not any(o.startswith("CUSTOM") for o in ops),
           "shape_signature": [int(x) for x in it.get_input_details()[0]["shape_signature"]],
           "rows_for_7_inputs_after_resize": rows7, "fixed_batch": r.fixed_batch}
    rename = (lambda o: {next(iter(ref)): next(iter(o.values()))}
              if set(o) != set(ref) and len(o) == len(ref) == 1 else o)
    got, failed = r.run(feeds)
    got = rename(got)
    cmp = compare(ref, got, gate_for(fmt), failed=failed)
    out.update({"max_abs_diff": cmp.headline().get("max_abs_diff"), "gate_passed": cmp.passed,
                "failures": cmp.failures[:3]})
    if r.fixed_batch is None:
        at7 = rename(r.run_resized(feeds, 7))
        c7 = compare(ref, at7, gate_for(fmt))
        out["batch7"] = {"passed": c7.passed, "max_abs_diff": c7.headline().get("max_abs_diff"),
                         "failures": c7.failures[:2]}
    one = {k: v[:1] for k, v in feeds.items()}
    out["latency_b1_ms"] = round(1e3 * r.latency(one, repeats=50)["p50_s"], 3)
    b256 = {k: np.resize(v, (256, *v.shape[1:])) for k, v in feeds.items()}
    if r.fixed_batch is None:
        out["latency_b256_ms"] = round(1e3 * r.latency(b256, repeats=10)["p50_s"], 3)
        out["latency_b256_calls"] = 1
    else:
        t = []
        for _ in range(5):
            t0 = time.perf_counter()
            r.run(b256)
            t.append(time.perf_counter() - t0)
        out["latency_b256_ms"] = round(1e3 * float(np.median(t)), 3)
        out["latency_b256_calls"] = 256 // r.fixed_batch
    return out


def _precisions(route: str, float_data: bytes, seconds: float, h, feeds, ref, work: Path) -> dict:
    from edgeport.exporters import ExportOptions, _torch_compat, tflite_common

    keep = [_torch_compat.tflite_scope_regex(f"{_torch_compat.WRAPPED_ATTR}.{m}") for m in h.keep_float if m]
    res = {}
    for p in PRECISIONS:
        t0 = time.perf_counter()
        try:
            if p == "fp32":
                data = float_data
            elif p == "int8_full":
                data = tflite_common.quantize_full_int8(float_data, h, ExportOptions(), keep_regexes=keep, notes={}, batch=1)
            else:
                data = tflite_common.quantize(float_data, p, keep_regexes=keep)
            res[p] = {"export_seconds": round(seconds + time.perf_counter() - t0, 2),
                      **_evaluate(data, work / f"{route}_{p}.tflite", h, feeds, ref, FORMAT[p])}
        except Exception as e:  # noqa: BLE001 - a benchmark records failures
            res[p] = {"error": f"{type(e).__name__}: {str(e)[:240]}"}
    return res


def routes(h, feeds, ref, work: Path) -> dict:
    import torch

    from edgeport.exporters import ExportOptions, _onnx2tf_compat, _torch_compat
    from edgeport.exporters import onnx as ox
    from edgeport.exporters import tflite as tl

    res: dict = {}
    # litert-torch with a dynamic batch
    try:
        import litert_torch

        module = _torch_compat.ordered_module(h, as_dict=True)
        sample = _torch_compat.sample_tensors(h, _torch_compat.SAMPLE_BATCH)
        dim = torch.export.Dim("batch", min=1, max=65536)
        t0 = time.perf_counter()
        with _torch_compat.quiet(), torch.no_grad():
            edge = litert_torch.convert(module, sample_kwargs=sample,
                                        dynamic_shapes={n: {0: dim} for n in h.input_names})
        data = bytes(edge.model_content())
        res["litert_torch_dynamic"] = {"fp32": {"export_seconds": round(time.perf_counter() - t0, 2),
                                                **_evaluate(data, work / "ltd.tflite", h, feeds, ref, "tflite")}}
    except Exception as e:  # noqa: BLE001
        res["litert_torch_dynamic"] = {"fp32": {"error": _torch_compat._first_line(e)[:300]}}
    # litert-torch, fixed batch 1
    t0 = time.perf_counter()
    data = _torch_compat.litert_convert(h, batch=1)
    res["litert_torch_fixed"] = _precisions("ltf", data, time.perf_counter() - t0, h, feeds, ref, work)
    # SavedModel -> TFLite converter (edgeport's route)
    t0 = time.perf_counter()
    data = tl.savedmodel_tflite(h, ExportOptions(work_dir=work))
    res["savedmodel"] = _precisions("sm", data, time.perf_counter() - t0, h, feeds, ref, work)
    # onnx2tf's own TFLite files
    import onnx

    d = work / "o2t"
    d.mkdir()
    t0 = time.perf_counter()
    onnx.save(ox.source_onnx(h, ExportOptions()), str(d / "m.onnx"))
    _onnx2tf_compat.convert(d / "m.onnx", d / "out", d)
    secs = round(time.perf_counter() - t0, 2)
    res["onnx2tf_direct"] = {}
    for p, fn in (("fp32", "m_float32.tflite"), ("fp16", "m_float16.tflite")):
        try:
            raw = (d / "out" / fn).read_bytes()
            ev = _evaluate(raw, work / f"o2t_{p}.tflite", h, feeds, ref, FORMAT[p])
            res["onnx2tf_direct"][p] = {"export_seconds (both files)": secs, **ev}
        except Exception as e:  # noqa: BLE001
            res["onnx2tf_direct"][p] = {"error": f"{type(e).__name__}: {str(e)[:240]}"}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["geo", "geolike"], default="geo")
    ap.add_argument("--species", type=int, default=200)
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeport-batch-routes-"))
    from edgeport.runtimes.torch import TorchRunner

    try:
        h, info = _handle(args, work)
        feeds = h.reference_inputs(ROWS, 0)
        ref = TorchRunner.from_handle(h).run(feeds)[0]
        result = {"command": "nice -n 5 .venv/bin/python " + shlex.join(sys.argv), "machine": platform.machine(),
                  "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(), "rows": ROWS, **info}
        result["routes"] = routes(h, feeds, ref, work)
        result["loadavg_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or Path(__file__).parent / "results" / f"tflite_batch_routes_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

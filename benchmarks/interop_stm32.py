"""The audio seed system's published checkpoint (birdnet-stm32 ``birdnet_stm32n6_100``) through edgeport: its
``.keras`` loaded in safe mode, converted by ``edgeport export`` to full INT8 (calibrated on a synthetic folder
whose class folders carry the model's first label names), and compared over the same inputs with the Keras
model and with the seed system's own INT8 ``.tflite`` shipped beside it (docs/seed-models.md).

Inputs: seed-contract spectrograms (|STFT| of 3 s chunks at 22050 Hz, 257 bins, min-max scaled to [0, 1] per
chunk) of synthetic calls drawn with another seed than the calibration folder (one in 8 is background noise).
Figures per pair: mean and worst cosine, centred Pearson, top-1 agreement (``edgeport.validation.metrics``).
The float ``tflite`` and ``onnx`` exports are recorded with the export's own validation against Keras.
Latency: both ``.tflite`` files at batch 1 in LiteRT (``LiteRTRunner.latency``). One export per calibration
folder seed (``--calibration-seeds``): the converter's min/max calibration follows the folder's extremes, so the
spread over seeds is part of the figure.

Beside each export (edgeport's default: the TFLite converter's PTQ with the seed frontend layer float), the
candidates it was chosen from, converted from the same calibration rows (``build_audio_inputs`` as the export
calls it) and compared on the same inputs: the converter with everything INT8 (as the shipped file; edgeport's
default before), and ai-edge-quantizer (``--int8-route ai-edge-quantizer``) all INT8 and with the frontend float.

    nice -n 5 .venv/bin/python benchmarks/interop_stm32.py [--interop-dir DIR] [--inputs 256]

The checkpoint is looked for as the interop tests do (``$EDGEPORT_INTEROP_DIR``, ``<repo>/../shared/interop``,
``/work/shared/interop``). Writes benchmarks/results/interop_stm32.json.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
STEM = "birdnet_stm32n6_100"


def _scores(runner, x):
    import numpy as np

    outs, failed = runner.run({runner.inputs[0].name: x}, 1)
    if failed.any():
        raise RuntimeError(f"{int(failed.sum())} rows failed in {runner.name}")
    return np.asarray(next(iter(outs.values())))


def _pair(ref, cand) -> dict:
    """The comparator's figures, and the tail of the per-row cosines (one worst row out of 256 is one draw)."""
    import numpy as np

    from edgeport.validation.metrics import cosine_rows, output_metrics

    m = output_metrics(ref, cand)
    cos = cosine_rows(ref, cand)
    return {"cosine_mean": m.cosine_mean, "cosine_worst": m.cosine_worst, "centred_pearson": m.centred_pearson,
            "top1_agreement": m.top1_agreement, "top1_rows": m.top1_rows, "max_abs_diff": m.max_abs_diff,
            "rows": m.rows, "cosine_p1": float(np.percentile(cos, 1)), "cosine_p5": float(np.percentile(cos, 5)),
            "cosine_worst10_mean": float(np.sort(cos)[:10].mean()), "rows_below_0.95": int((cos < 0.95).sum()),
            "rows_below_0.9": int((cos < 0.9).sum())}


FIGURES = ("cosine_mean", "cosine_worst", "centred_pearson", "top1_agreement")


def _as_faithful(ours: dict, shipped: dict) -> dict:
    return {k: ours[k] >= shipped[k] for k in FIGURES}


def _candidates(keras_path: Path, data: Path, x, keras_scores, shipped_vs_keras: dict, num_samples: int) -> dict:
    """The full-INT8 routes edgeport's default was chosen from, on the export's own calibration rows."""
    from edgeport.exporters import tflite_common as T
    from edgeport.exporters import tflite_keras as KT
    from edgeport.exporters.base import ExportOptions
    from edgeport.families.audio.seed_layers import int8_float_layers
    from edgeport.runtimes import open_runner
    from edgeport.sources import load_source
    from edgeport.sources.keras import attach_audio_data

    handle = load_source(keras_path)
    attach_audio_data(handle, data, num_samples=num_samples, progress=False)
    rows = handle.calibration_inputs(num_samples)[handle.input_names[0]]
    frontend = int8_float_layers(handle.model)
    opts = ExportOptions(calibration_samples=num_samples)
    make = {
        "converter_all_int8": lambda: KT.convert_ptq(handle, rows, float_layers=()),
        "ai_edge_quantizer_all_int8": lambda: T.quantize_full_int8(KT.convert_float(handle), handle, opts,
                                                                   keep_regexes=[], notes={}),
        "ai_edge_quantizer_frontend_float": lambda: T.quantize_full_int8(
            KT.convert_float(handle), handle, opts, keep_regexes=T.layer_regexes(frontend), notes={}),
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in make.items():
            t = time.time()
            try:
                data_bytes = fn()
            except Exception as e:  # noqa: BLE001 - a candidate that fails is recorded with its reason
                out[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                continue
            p = Path(tmp) / f"{name}.tflite"
            p.write_bytes(data_bytes)
            pair = _pair(keras_scores, _scores(open_runner("litert", p), x))
            out[name] = {"vs_keras": pair, "at_least_as_faithful_as_shipped": _as_faithful(pair, shipped_vs_keras),
                         "size_bytes": len(data_bytes), "seconds": time.time() - t}
    return out


def _start_exports(jobs: dict) -> dict:
    """Start each ``edgeport`` argument list as its own process (all at once: the shared machine's cores are the
    limit, not this script)."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from edgeport.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return {key: (subprocess.Popen([sys.executable, "-c", code, *cmd], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True), time.time()) for key, cmd in jobs.items()}


def _wait(procs: dict) -> dict:
    """Seconds per export (None: it failed; its output is printed)."""
    done = {}
    for key, (proc, t) in procs.items():
        out, _ = proc.communicate()
        done[key] = time.time() - t if proc.returncode == 0 else None
        if proc.returncode != 0:
            print(out, file=sys.stderr)
    return done


def main(argv=None) -> int:
    import numpy as np

    from tests._support.interop import find_interop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interop-dir", type=Path, default=None, help="the birdnet-stm32 folder")
    ap.add_argument("--inputs", type=int, default=256, help="comparison inputs")
    ap.add_argument("--species", type=int, default=8, help="synthetic species (class folders) to calibrate on")
    ap.add_argument("--files-per-class", type=int, default=16)
    ap.add_argument("--noise-files", type=int, default=16, help="noise files of the calibration folder")
    ap.add_argument("--calibration-seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="one calibration folder (and export) per seed of the synthetic generator")
    ap.add_argument("--num-samples", type=int, default=1024, help="edgeport export --num-samples")
    ap.add_argument("--latency-repeats", type=int, default=200)
    ap.add_argument("--candidate-seeds", type=int, nargs="*", default=None,
                    help="calibration seeds whose folder also converts the candidate routes (default: the first)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "interop_stm32.json")
    args = ap.parse_args(argv)

    src = args.interop_dir or find_interop("birdnet-stm32")
    if src is None or not (src / f"{STEM}.keras").is_file():
        print("the seed system's checkpoint (birdnet-stm32/) was not found: pass --interop-dir", file=sys.stderr)
        return 2
    from edgeport.audio.synthetic import (
        CallSynth,
        SyntheticSpec,
        generate_dataset,
        make_clip,
    )
    from edgeport.families.audio.contract import features
    from edgeport.families.audio.model_config import read_model_config
    from edgeport.fileio import atomic_write_json
    from edgeport.runtimes import open_runner
    from edgeport.runtimes.keras import KerasRunner

    cfg = read_model_config(src / f"{STEM}_model_config.json")
    labels = (src / f"{STEM}_labels.txt").read_text().splitlines()
    t0 = time.time()
    rng = np.random.default_rng(2026)
    synth = CallSynth(SyntheticSpec(n_species=args.species, sample_rate=cfg.sample_rate, duration=cfg.chunk_duration))
    x = np.stack([features(make_clip(synth, None if i % 8 == 7 else i % args.species, rng), cfg)
                  for i in range(args.inputs)])
    tmp = tempfile.mkdtemp(prefix="interop-stm32-")
    noise = args.noise_files
    folders = {}
    for seed in args.calibration_seeds:
        folders[seed] = Path(tmp) / f"calibration_{seed}"
        generate_dataset(folders[seed], SyntheticSpec(n_species=args.species, files_per_class=args.files_per_class,
                                                      noise_files=noise, duration=4.0, sample_rate=cfg.sample_rate),
                         seed=seed, names=labels[: args.species])
    first = folders[args.calibration_seeds[0]]
    # every export is its own `edgeport export` process, all started at once
    jobs = {seed: ["export", str(src / f"{STEM}.keras"), "--data-path-train", str(folders[seed]), "--formats",
                   "tflite_int8_full", "--outdir", str(Path(tmp) / f"exports_{seed}"), "--num-samples",
                   str(args.num_samples)] for seed in args.calibration_seeds}
    # the float formats, validated by the export itself against Keras (on held-out chunks of the first folder)
    jobs["float"] = ["export", str(src / f"{STEM}.keras"), "--data-path-train", str(first), "--formats", "tflite",
                     "onnx", "--outdir", str(Path(tmp) / "exports_float")]
    procs = _start_exports(jobs)
    keras_scores = _scores(KerasRunner.open(src / f"{STEM}.keras"), x)
    shipped = open_runner("litert", src / f"{STEM}.tflite")
    shipped_scores = _scores(shipped, x)

    def latency(runner) -> dict:
        lat = runner.latency({runner.inputs[0].name: x[:1]}, repeats=args.latency_repeats)
        return {k.replace("_s", "_ms"): 1000 * v for k, v in lat.items()}

    shipped_vs_keras = _pair(keras_scores, shipped_scores)
    # the candidate routes convert in this process while the exports run
    candidate_seeds = args.calibration_seeds[:1] if args.candidate_seeds is None else args.candidate_seeds
    candidates = {seed: _candidates(src / f"{STEM}.keras", folders[seed], x, keras_scores, shipped_vs_keras,
                                    args.num_samples) for seed in candidate_seeds}
    runs = []
    seconds = _wait(procs)
    if any(v is None for v in seconds.values()):
        print(f"edgeport export failed: {[k for k, v in seconds.items() if v is None]}", file=sys.stderr)
        return 1
    for seed in args.calibration_seeds:
        out = Path(tmp) / f"exports_{seed}"
        manifest = json.loads((out / "manifest.json").read_text())
        art = manifest["artifacts"][0]
        ours_path = out / f"{STEM}_quantized.tflite"
        ours = open_runner("litert", ours_path)
        ours_scores = _scores(ours, x)
        runs.append({
            "calibration": {"folder": f"{args.species} synthetic species named as the model's first labels x "
                            f"{args.files_per_class} files + {noise} noise files, 4 s", "seed": seed,
                            "rows": manifest["calibration"]["rows"],
                            "skipped_near_silent": manifest["calibration"].get("skipped_near_silent")},
            "export": {"status": art["status"], "route": art["notes"].get("int8_route"),
                       "float_layers": art["notes"].get("float_layers"), "seconds": seconds[seed],
                       "validation": {k: art["batch_validate"][0].get(k) for k in
                                      ("cosine_mean", "cosine_worst", "top1_agreement")}},
            "edgeport_int8_vs_keras": _pair(keras_scores, ours_scores),
            "edgeport_int8_vs_shipped_tflite": _pair(shipped_scores, ours_scores),
            "latency_batch1_ms": latency(ours),
            "size_bytes": ours_path.stat().st_size,
        })
        run = runs[-1]
        run["at_least_as_faithful_as_shipped"] = _as_faithful(run["edgeport_int8_vs_keras"], shipped_vs_keras)
        if seed in candidates:
            run["candidates"] = candidates[seed]
    out = Path(tmp) / "exports_float"
    float_formats = {a["format"]: {"status": a["status"], **{k: a["batch_validate"][0].get(k) for k in
                                                              ("max_abs_diff", "cosine_mean", "top1_agreement")}}
                     for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "command": shlex.join(["python", "benchmarks/interop_stm32.py", *(argv if argv is not None else sys.argv[1:])]),
        "model": f"{STEM} (birdnet-team/birdnet-stm32 checkpoints/, commit 2577765)",
        "inputs": {"rows": int(args.inputs), "what": "seed-contract |STFT| (257 x 256, min-max [0, 1]) of synthetic "
                   "3 s clips, one in 8 background noise (a quarter of those at -60..-45 dB)", "seed": 2026},
        "shipped_tflite": {"vs_keras": shipped_vs_keras, "latency_batch1_ms": latency(shipped),
                           "size_bytes": (src / f"{STEM}.tflite").stat().st_size},
        "edgeport_tflite_int8_full": runs,
        "edgeport_float_formats_vs_keras": float_formats,
        "seconds": time.time() - t0,
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    atomic_write_json(args.out, res)
    print(json.dumps({"shipped": res["shipped_tflite"], "edgeport": runs}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

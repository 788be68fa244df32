"""Does full-INT8 calibration starve on a small folder? Rows per file vs fidelity to the Keras model.

A new user's small folder: 4 synthetic species + noise, 20 files each (100 files, 4 s, the demo's 16 kHz /
2 s chunk DS-CNN trained 12 epochs on it). ``tflite_int8_full`` is converted as ``edgeport export`` does
(the TFLite converter's PTQ, the per-sample normalisation and what feeds it float) from calibration sets
built by ``build_audio_inputs`` with 1, 2 or 3 rows per file (the centre chunk, then the file's other chunks
by decreasing energy) and with the default (``rows_per_file=None``), and compared with the Keras model on
the same inputs: chunks of a separate test folder (another seed, 10 files per class; files drawn class by class
until 64 held-out chunks are in) plus the hard cases (digital silence, a chunk at -60 and -80 dB).
``--demo`` adds the demo's own folder and model (6 species + noise x 40 files, 40 epochs) as the reference a
small folder should reach, calibrated on its whole folder and on a 98-file subset of it (14 files per class);
``--oracle`` calibrates each small model on a large folder of the same species too (100 files per class): if
that does no better than the small folder, the small folder is not what limits the small model's fidelity.

    nice -n 5 .venv/bin/python benchmarks/calibration_small.py [--seeds 0 1] [--demo] [--oracle]

Writes benchmarks/results/calibration_small.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
SMALL = {"n_species": 4, "files_per_class": 20, "noise_files": 20}


def test_inputs(test_dir: Path, cfg):
    """The hard cases and the chunks ``build_audio_inputs`` reads from the test folder (files drawn class by
    class until 64 held-out chunks are in), as model inputs."""
    import numpy as np

    from edgeport.families.audio.representative import build_audio_inputs

    data = build_audio_inputs(test_dir, cfg, num_samples=1, rows_per_file=1, validate_samples=1, progress=False)
    return np.concatenate([data.hard_cases, data.calibration, data.heldout]).astype(np.float32)


def int8_fidelity(handle, model, cfg, train_dir: Path, x, rows_per_file: int | None, num_samples: int, *,
                  float_frontend: bool = False) -> dict:
    """Calibrate on ``train_dir`` with ``rows_per_file``, convert as the export does, compare with Keras on x."""
    import numpy as np

    from edgeport.exporters import tflite_keras as KT
    from edgeport.families.audio.graph_rules import float_layers
    from edgeport.families.audio.representative import build_audio_inputs
    from edgeport.runtimes import open_runner

    data = build_audio_inputs(train_dir, cfg, num_samples=num_samples, rows_per_file=rows_per_file, progress=False)
    t = time.time()
    tfl = KT.convert_ptq(handle, data.calibration,
                          float_layers=float_layers(handle, backend="tflite", float_frontend=float_frontend))
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "m.tflite"
        p.write_bytes(tfl)
        runner = open_runner("litert", p)
        outs, failed = runner.run({runner.inputs[0].name: x}, 1)
    if failed.any():
        raise RuntimeError(f"{int(failed.sum())} rows failed")
    ref = np.asarray(model.predict(x, batch_size=64, verbose=0))
    from edgeport.validation.metrics import output_metrics

    m = output_metrics(ref, np.asarray(next(iter(outs.values()))))
    s = data.summary()
    return {"rows_per_file": s["rows_per_file"], "requested_rows_per_file": rows_per_file,
            "calibration_rows": len(data.calibration), "files_used": s["files_used"],
            "class_histogram": s["class_histogram"], "skipped_near_silent": s["skipped_near_silent"],
            "cosine_mean": m.cosine_mean, "cosine_worst": m.cosine_worst, "centred_pearson": m.centred_pearson,
            "top1_agreement": m.top1_agreement, "max_abs_diff": m.max_abs_diff, "rows": m.rows,
            "convert_seconds": time.time() - t}


def run_case(name: str, test_dir: Path, model_path: Path, settings, num_samples: int) -> dict:
    """``settings``: (label, calibration folder, rows per file) triples, each converted and compared on x."""
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.sources import load_source

    handle = load_source(model_path)
    cfg = AudioModelConfig.from_dict(handle.config)
    x = test_inputs(test_dir, cfg)
    runs = []
    for label, folder, k in settings:
        runs.append({"calibration": label, "calibration_files": count_wavs(folder)}
                    | int8_fidelity(handle, handle.model, cfg, folder, x, k, num_samples))
        print(name, {key: runs[-1][key] for key in ("calibration", "rows_per_file", "calibration_rows", "cosine_mean",
                                                   "cosine_worst", "centred_pearson", "top1_agreement")}, flush=True)
    return {"case": name, "test_rows": len(x), "runs": runs}


def count_wavs(folder: Path) -> int:
    return sum(1 for _ in Path(folder).rglob("*.wav"))


def subset_folder(src: Path, dst: Path, per_class: int) -> Path:
    """The first ``per_class`` files of every class folder of ``src``, copied to ``dst``."""
    import shutil

    for cls in sorted(p for p in Path(src).iterdir() if p.is_dir()):
        (dst / cls.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(cls.glob("*.wav"))[:per_class]:
            shutil.copy2(f, dst / cls.name / f.name)
    return dst


def main(argv=None) -> int:
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.fileio import atomic_write_json
    from edgeport.training.demo import DEMO_DIFFICULTY, demo_train_config, train_demo
    from edgeport.training.trainer import train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one small folder (and model) per seed")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--num-samples", type=int, default=1024, help="edgeport export --num-samples")
    ap.add_argument("--demo", action="store_true", help="also the demo's folder and model (40 epochs)")
    ap.add_argument("--rows-per-file", nargs="+", default=["1", "2", "3", "default"],
                    help="calibration rows per file to try on the model's own folder ('default': edgeport's)")
    ap.add_argument("--oracle", action="store_true",
                    help="also calibrate every small model on a large folder (100 files per class) of the same "
                         "species: the model's own ceiling under PTQ with abundant data")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "calibration_small.json")
    args = ap.parse_args(argv)
    per_file = [None if k == "default" else int(k) for k in args.rows_per_file]
    t0 = time.time()
    cases = []

    def write() -> None:  # after every case: a long run keeps what it measured
        atomic_write_json(args.out, {
            "command": shlex.join(["python", "benchmarks/calibration_small.py",
                                   *(argv if argv is not None else sys.argv[1:])]),
            "what": "tflite_int8_full (converter PTQ, normalisation float) vs the Keras model on the chunks of a "
                    "separate test folder (files drawn class by class until 64 held-out chunks) + silence and "
                    "-60/-80 dB hard cases. Calibration: the model's own training folder with 1, 2, 3 rows per "
                    "file or the default (requested_rows_per_file null); 'large folder': 100 files per class of "
                    "the same species (another seed); 'demo subset': 14 files per class of the demo's folder",
            "small_folder": {**SMALL, "duration_s": 4.0, "difficulty": DEMO_DIFFICULTY, "epochs": args.epochs,
                             "model": "demo DS-CNN (16 kHz, 2 s chunks, alpha 0.5)"},
            "cases": cases,
            "seconds": time.time() - t0, "loadavg": os.getloadavg(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
        })

    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            d = Path(tmp) / f"small_{seed}"
            generate_dataset(d / "train", SyntheticSpec(difficulty=DEMO_DIFFICULTY, **SMALL), seed=seed)
            generate_dataset(d / "test", SyntheticSpec(difficulty=DEMO_DIFFICULTY, n_species=4, files_per_class=10,
                                                       noise_files=10), seed=seed + 1000)
            settings = [("own folder", d / "train", k) for k in per_file]
            if args.oracle:
                generate_dataset(d / "large", SyntheticSpec(difficulty=DEMO_DIFFICULTY, n_species=4,
                                                            files_per_class=100, noise_files=100), seed=seed + 2000)
                settings.append(("large folder", d / "large", None))
            cfg = demo_train_config(d / "train", d / "model" / "small.keras", seed=seed, epochs=args.epochs)
            result = train(cfg)
            cases.append(run_case(f"small_seed{seed}", d / "test", result.model_path, settings, args.num_samples)
                         | {"train_files": count_wavs(d / "train"), "val_roc_auc": result.val_roc_auc})
            write()
        if args.demo:
            s = train_demo(Path(tmp) / "demo", seed=0)
            train_dir = Path(s["train_dir"])
            subset = subset_folder(train_dir, Path(tmp) / "demo_subset", per_class=14)
            settings = [("own folder", train_dir, None), ("demo subset", subset, None)]
            cases.append(run_case("demo", Path(s["test_dir"]), Path(s["model_path"]), settings, args.num_samples)
                         | {"train_files": count_wavs(train_dir), "val_roc_auc": s["val_roc_auc"]})
    write()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())

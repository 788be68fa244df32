"""Should edgeport's own hybrid models take the seed system's input (257 bins padded in the graph, min-max [0, 1])?

One on-device preprocessing would then serve both edgeport's models and the seed system's. This trains the
demo's DS-CNN (16 kHz, 2 s chunks, alpha 0.5) twice on the same synthetic folders (by default the small
folder of ``benchmarks/calibration_small.py``: 4 species + noise x 20 files, 12 epochs; ``--demo-data``: the
demo's 6 species + noise x 40 files, 40 epochs):

  edgeport   edgeport's contract: |STFT| of the peak-normalised file, bins padded to a multiple of 8 before the
             model, per-sample max normalisation in the graph (``frontend_normalize``, kept float in full INT8)
  seed       the seed system's contract: |STFT| of the file as read, min-max scaled to [0, 1] per chunk,
             ``fft_length // 2 + 1`` bins padded in the graph (a ZeroPadding2D before the mel mixer), no
             normalisation in the graph. edgeport's trainer has no option for it: this script swaps that
             frontend into ``dscnn._frontend`` and adds the contract keys to the written model config, so the
             data pipeline, ``evaluate`` and ``export`` follow the seed contract from the config.

Per variant: float test ROC-AUC (the demo's file-level metric on its held-out test folder), and
``tflite_int8_full`` fidelity to the Keras model (converter PTQ on the demo folder's calibration rows; the
seed variant all INT8 as the seed system converts, and with ``--float-frontend``, i.e. the mel mixer float)
on every chunk of the test folder + the hard cases (``benchmarks/calibration_small.py``'s comparison).

    nice -n 5 .venv/bin/python benchmarks/seed_contract_train.py [--epochs 40]

Writes benchmarks/results/seed_contract_train.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
SEED_CONTRACT = {"input_scaling": "minmax", "pad_bins_in_graph": True}


def _seed_frontend(x, cfg):
    """The seed contract's hybrid frontend: pad the bins in the graph, mel mixer, no normalisation."""
    from keras import layers

    from edgeport.audio.spectrogram import padded_bins
    from edgeport.families.audio import layers as fl

    extra = padded_bins(cfg.fft_length) - int(x.shape[1])
    x = layers.ZeroPadding2D(((0, extra), (0, 0)), name="bins_pad")(x)
    x = fl.MelMixer(cfg.num_mels, cfg.sample_rate, cfg.fft_length, trainable=cfg.frontend_trainable,
                    name="mel_mixer")(x)
    if cfg.mag_scale != "none":
        x = fl.MAG_LAYERS[cfg.mag_scale](name=f"mag_{cfg.mag_scale}")(x)
    return x


def train_variant(name: str, train_dir: Path, out: Path, *, seed: int, epochs: int):
    from unittest import mock

    from edgeport.families.audio import dscnn
    from edgeport.training.config import TrainConfig
    from edgeport.training.demo import demo_train_config
    from edgeport.training.trainer import train

    cfg = demo_train_config(train_dir, out / f"{name}.keras", seed=seed, epochs=epochs, num_workers=0)
    if name == "edgeport":
        return train(cfg)
    own = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in ("data_path_train", "audio")}
    cfg = TrainConfig(cfg.data_path_train, audio=cfg.audio.replace(**SEED_CONTRACT), **own)
    with mock.patch.object(dscnn, "_frontend", _seed_frontend):
        return train(cfg)


def main(argv=None) -> int:
    from benchmarks.calibration_small import SMALL, int8_fidelity, test_inputs
    from edgeport.audio.dataset import scan_dataset
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.families.audio.loading import load_trained_model
    from edgeport.families.audio.model_config import AudioModelConfig
    from edgeport.fileio import atomic_write_json
    from edgeport.sources import load_source
    from edgeport.training.demo import (
        DEMO_DIFFICULTY,
        DEMO_TEST_FILES,
        DEMO_TRAIN_FILES,
        evaluate_files,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default 12 (small folder), 40 (--demo-data)")
    ap.add_argument("--demo-data", action="store_true", help="the demo's folder instead of the small one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-samples", type=int, default=1024)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "seed_contract_train.json")
    args = ap.parse_args(argv)
    args.epochs = args.epochs or (40 if args.demo_data else 12)
    if args.demo_data:
        data = {"n_species": 6, "files_per_class": DEMO_TRAIN_FILES, "noise_files": DEMO_TRAIN_FILES}
        test = {"n_species": 6, "files_per_class": DEMO_TEST_FILES, "noise_files": DEMO_TEST_FILES}
    else:
        data, test = SMALL, {"n_species": 4, "files_per_class": 10, "noise_files": 10}
    t0 = time.time()
    variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = Path(tmp) / "train", Path(tmp) / "test"
        generate_dataset(train_dir, SyntheticSpec(difficulty=DEMO_DIFFICULTY, **data), seed=args.seed)
        generate_dataset(test_dir, SyntheticSpec(difficulty=DEMO_DIFFICULTY, **test), seed=args.seed + 1000)
        for name in ("edgeport", "seed"):
            t = time.time()
            result = train_variant(name, train_dir, Path(tmp) / "model", seed=args.seed, epochs=args.epochs)
            t_train = time.time() - t
            model, mcfg = load_trained_model(result.model_path)
            test_ds = scan_dataset(test_dir, class_names=list(mcfg.class_names))
            handle = load_source(result.model_path)
            cfg = AudioModelConfig.from_dict(handle.config)
            x = test_inputs(test_dir, cfg)
            rec = {"input_shape": list(model.input_shape[1:]), "input_scaling": cfg.input_scaling,
                   "pad_bins_in_graph": cfg.pad_bins_in_graph, "val_roc_auc": result.val_roc_auc,
                   "best_epoch": result.best_epoch, "train_seconds": t_train,
                   "test_roc_auc": evaluate_files(model, mcfg, test_ds.files, test_ds.labels), "int8": {}}
            for ff in ((False, True) if name == "seed" else (False,)):
                from edgeport.families.audio.graph_rules import float_layers

                r = int8_fidelity(handle, handle.model, cfg, train_dir, x, None, args.num_samples, float_frontend=ff)
                r["float_layers"] = list(float_layers(handle, backend="tflite", float_frontend=ff))
                rec["int8"]["float_frontend" if ff else "default"] = r
            variants[name] = rec
            print(name, {k: rec[k] for k in ("input_shape", "val_roc_auc", "test_roc_auc")},
                  {k: {m: v[m] for m in ("cosine_mean", "cosine_worst", "top1_agreement")} for k, v in rec["int8"].items()},
                  flush=True)
    res = {
        "command": shlex.join(["python", "benchmarks/seed_contract_train.py", *(argv if argv is not None else sys.argv[1:])]),
        "data": {"train": data, "test": test, "difficulty": DEMO_DIFFICULTY, "seed": args.seed, "epochs": args.epochs},
        "variants": variants,
        "seconds": time.time() - t0, "loadavg": os.getloadavg(), "cpus": os.cpu_count(),
        "machine": platform.machine(), "python": platform.python_version(),
    }
    atomic_write_json(args.out, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())

"""Do the validation figures training reports belong to the model it saves? Small folders and the demo data.

For each case (3 seeds x 4 species + noise, 30 files each, 22050 Hz synthetic, ``--epochs 12 --alpha 0.5``;
and the demo's data and DS-CNN) and each variant of the code, this records the per-epoch validation
ROC-AUC of the history, the saved model's validation ROC-AUC as training reported it and as measured afresh
after loading it from disk (``edgeport.training.check``), and its ROC-AUC on a separate held-out test folder
through ``edgeport evaluate``'s path (every chunk, average pooling, macro ROC-AUC).

Variants (each trains in its own process, the scoring is the same code for all):
  before      the training code under ``--before-src`` (validation with the moving BatchNorm statistics,
              re-estimation only after training)
  after       this tree (statistics re-estimated before every validation pass)
  momentum    this tree with no re-estimation and BatchNorm momentum ``--momentum`` (the adapted-momentum
              alternative: validation and saved model use the moving statistics)

Usage: nice -n 5 python benchmarks/train_small.py --before-src /path/to/unchanged/src
       -> benchmarks/results/train_small.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SMALL_SPEC = {"n_species": 4, "files_per_class": 30, "noise_files": 30, "sample_rate": 22050}


def _git_rev(path: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _cases(tmp: Path, seeds: list[int], epochs: int, demo: bool) -> list[dict]:
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset
    from edgeport.training.demo import (
        DEMO_DIFFICULTY,
        DEMO_TEST_FILES,
        DEMO_TRAIN_FILES,
    )

    cases = []
    for seed in seeds:
        d = tmp / "data" / f"small_s{seed}"
        generate_dataset(d / "train", SyntheticSpec(**SMALL_SPEC), seed=seed)
        generate_dataset(d / "test", SyntheticSpec(**SMALL_SPEC), seed=seed + 1000)
        cases.append({"name": f"small_seed{seed}", "train_dir": str(d / "train"), "test_dir": str(d / "test"),
                      "config": {"epochs": epochs, "alpha": 0.5, "seed": seed, "progress": False, "num_workers": 0}})
    if demo:
        d = tmp / "data" / "demo"
        generate_dataset(d / "train", SyntheticSpec(difficulty=DEMO_DIFFICULTY, files_per_class=DEMO_TRAIN_FILES,
                                                     noise_files=DEMO_TRAIN_FILES), seed=0)
        generate_dataset(d / "test", SyntheticSpec(difficulty=DEMO_DIFFICULTY, files_per_class=DEMO_TEST_FILES,
                                                   noise_files=DEMO_TEST_FILES), seed=1000)
        cases.append({"name": "demo", "train_dir": str(d / "train"), "test_dir": str(d / "test"), "demo": True,
                      "config": {"seed": 0, "num_workers": 0}})
    return cases


def _config(case: dict, checkpoint: Path):
    """The TrainConfig of a case (the demo's own config for the demo data)."""
    from edgeport.training.config import TrainConfig
    from edgeport.training.demo import demo_train_config

    if case.get("demo"):
        return demo_train_config(Path(case["train_dir"]), checkpoint, **case["config"])
    return TrainConfig(data_path_train=case["train_dir"], checkpoint_path=str(checkpoint), **case["config"])


def child(jobs_path: Path, out_path: Path, momentum: float | None, no_reestimation: bool) -> None:
    """Train every case of ``jobs_path`` with the edgeport on sys.path; write what training reported."""
    from dataclasses import replace

    from edgeport.training.trainer import read_history, train

    if momentum is not None:
        from edgeport.families.audio import dscnn

        dscnn.BN_MOMENTUM = momentum
    out = []
    for job in json.loads(jobs_path.read_text()):
        cfg = _config(job, Path(job["checkpoint"]))
        if no_reestimation:
            cfg = replace(cfg, bn_recalibration_batches=0)
        t0 = time.time()
        r = train(cfg)
        hist = read_history(r.paths["history"])
        out.append({"name": job["name"], "checkpoint": str(r.model_path), "config": cfg.to_dict(),
                    "seconds_train": time.time() - t0, "epochs_run": r.epochs_run, "best_epoch": r.best_epoch,
                    "reported_val_roc_auc": r.val_roc_auc, "batchnorm": r.batchnorm,
                    "history_val_roc_auc": [h["val_roc_auc"] for h in hist],
                    "history_val_loss": [h["val_loss"] for h in hist],
                    "history_val_roc_auc_moving_stats": [h.get("val_roc_auc_moving_stats") for h in hist]
                    if "val_roc_auc_moving_stats" in (hist[0] if hist else {}) else None})
    out_path.write_text(json.dumps(out, indent=1, default=float))


def _score(run: dict, case: dict) -> dict:
    """Fresh figures of the saved model: validation split (as training builds it) and the held-out folder."""
    import numpy as np

    from edgeport.evaluation.audio import evaluate_audio_artifact
    from edgeport.training.check import saved_model_val_roc_auc
    from edgeport.training.config import TrainConfig

    cfg = TrainConfig.from_dict(run["config"])
    hist = run["history_val_roc_auc"]
    best_hist = hist[run["best_epoch"] - 1]
    fresh = saved_model_val_roc_auc(cfg, run["checkpoint"])
    ev = evaluate_audio_artifact(run["checkpoint"], case["test_dir"], n_boot=1, progress=False)
    s = {"history_best_epoch_val_roc_auc": best_hist, "history_val_roc_auc_min": float(np.nanmin(hist)),
         "history_val_roc_auc_max": float(np.nanmax(hist)), "saved_val_roc_auc_fresh": fresh,
         "history_vs_saved_gap": abs(best_hist - fresh), "test_roc_auc": ev.metrics["roc_auc_macro"]}
    if case.get("demo"):
        from edgeport.audio.dataset import scan_dataset
        from edgeport.families.audio.loading import load_trained_model
        from edgeport.training.demo import evaluate_files

        model, mcfg = load_trained_model(run["checkpoint"])
        test_ds = scan_dataset(case["test_dir"], class_names=list(mcfg.class_names))
        s["demo_test_roc_auc"] = evaluate_files(model, mcfg, test_ds.files, test_ds.labels)  # the demo's figure
    return s


def _summary(runs: list[dict]) -> dict:
    import numpy as np

    keys = ("history_best_epoch_val_roc_auc", "reported_val_roc_auc", "saved_val_roc_auc_fresh",
            "history_vs_saved_gap", "test_roc_auc", "best_epoch", "seconds_train")
    small = [r for r in runs if r["name"].startswith("small")]
    out = {"small_mean": {k: float(np.mean([r[k] for r in small])) for k in keys} if small else None,
           "small_max_gap": float(max(r["history_vs_saved_gap"] for r in small)) if small else None}
    demo = [r for r in runs if r["name"] == "demo"]
    if demo:
        out["demo"] = {k: demo[0][k] for k in (*keys, "demo_test_roc_auc")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before-src", type=Path, help="src folder of the unchanged code (the 'before' variant)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--momentum", type=float, default=0.5, help="BatchNorm momentum of the 'momentum' variant")
    ap.add_argument("--variants", nargs="+", default=["before", "after", "momentum"])
    ap.add_argument("--no-demo", dest="demo", action="store_false")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "train_small.json")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-momentum", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--child-no-reestimation", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.child:
        child(args.child, args.child_out, args.child_momentum, args.child_no_reestimation)
        return
    if "before" in args.variants and args.before_src is None:
        sys.exit("--before-src is needed for the 'before' variant (or leave it out of --variants)")
    t_start, load_start = time.time(), os.getloadavg()
    result = {"command": "python benchmarks/train_small.py " + " ".join(sys.argv[1:]), "cpus": os.cpu_count(),
              "machine": platform.machine(), "python": sys.version.split()[0], "loadavg_start": load_start,
              "small_data": {**SMALL_SPEC, "difficulty": 0.5, "duration_s": 4.0, "test_seed": "seed + 1000"},
              "code": {"after": _git_rev(HERE.parent)}, "variants": {}, "summary": {}}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cases = _cases(tmp, args.seeds, args.epochs, args.demo)
        for variant in args.variants:
            src = args.before_src if variant == "before" else SRC
            if variant == "before":
                result["code"]["before"] = _git_rev(args.before_src)
            jobs = [{**c, "checkpoint": str(tmp / variant / c["name"] / "m.keras")} for c in cases]
            (tmp / f"{variant}_jobs.json").write_text(json.dumps(jobs))
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(tmp / f"{variant}_jobs.json"),
                   "--child-out", str(tmp / f"{variant}_out.json")]
            if variant == "momentum":
                cmd += ["--child-momentum", str(args.momentum), "--child-no-reestimation"]
            env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{HERE}"}
            t0 = time.time()
            subprocess.run(cmd, env=env, check=True)
            runs = json.loads((tmp / f"{variant}_out.json").read_text())
            for run, case in zip(runs, cases, strict=True):
                run.update(_score(run, case))
                run.pop("checkpoint")
                run["config"] = {k: run["config"][k] for k in ("epochs", "alpha", "seed", "sample_rate",
                                                               "bn_recalibration_batches", "steps_per_epoch")}
            result["variants"][variant] = {"seconds": time.time() - t0, "runs": runs,
                                           "momentum": args.momentum if variant == "momentum" else None}
            result["summary"][variant] = _summary(runs)
            print(json.dumps({variant: result["summary"][variant]}, indent=2), flush=True)
    result["seconds"] = time.time() - t_start
    result["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

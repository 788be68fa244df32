"""`edgeport tune` on this machine: 8 tiny trials with 1 worker vs 2 workers, decoded-audio cache cold vs warm.

Each run is a new SQLite study in its own folder, run by `edgeport tune` worker processes (the real CLI).
Every study gets the same 8 trials (the first is the command line's configuration, as in any new study,
then 7 drawn by a seeded random sampler and enqueued), so the runs differ only in workers and cache.
"Cold": a new, empty --cache-dir; "warm": a --cache-dir that an earlier run filled. The memory cache is
per process, so within one worker later trials hit memory either way; the cold/warm difference is the
decoding a worker does before its first trials. Records the machine's load average (the CPU is shared).

Usage: nice -n 5 .venv/bin/python benchmarks/tune.py [--trials 8] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--sample-rate", "16000", "--chunk-duration", "1", "--spec-width", "64", "--fft-length", "512",
         "--num-mels", "32", "--num-workers", "0", "--max-chunks-per-file", "3", "--no-progress"]


def _data(root: Path) -> Path:
    """4 species + noise, 8 WAV files each of 10 s at 44.1 kHz (decoding and resampling cost something)."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    generate_dataset(root, SyntheticSpec(n_species=4, files_per_class=8, noise_files=8, duration=10.0,
                                         sample_rate=44100, difficulty=0.6), seed=11)
    return root


def _params(n: int, base_args: list[str]) -> list[dict]:
    import optuna

    from edgeport.cli.args import config_from_args
    from edgeport.cli.main import build_parser
    from edgeport.training.tune import command_line_params, suggest

    base = config_from_args(build_parser().parse_args(["train", "--data-path-train", "x", *base_args]))
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = [command_line_params(base)]
    for _ in range(n - 1):
        t = s.ask()
        out.append(suggest(t))
        s.tell(t, 0.0)
    return out


def run(data: Path, work: Path, params: list[dict], workers: int, cache: Path, epochs: int) -> dict:
    import optuna

    from edgeport.training.tune import open_storage

    out = work / f"w{workers}_{cache.name}_{int(time.time())}"
    out.mkdir(parents=True)
    url = f"sqlite:///{out / 'study.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="bench", direction="maximize",
                                pruner=optuna.pruners.MedianPruner())
    for p in params:
        study.enqueue_trial(p)
    argv = [sys.executable, "-m", "edgeport.cli.main", "tune", "--data-path-train", str(data), *FLAGS,
            "--epochs", str(epochs), "--n-trials", str(len(params)), "--storage", url, "--study-name", "bench",
            "--outdir", str(out), "--cache-dir", str(cache)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    load0 = os.getloadavg()
    t = time.perf_counter()
    logs = [open(out / f"worker{i}.log", "w") for i in range(workers)]  # noqa: SIM115 - closed below
    procs = [subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT) for f in logs]
    codes = [p.wait() for p in procs]
    for f in logs:
        f.close()
    wall = time.perf_counter() - t
    trials = optuna.load_study(study_name="bench", storage=url).get_trials()
    states: dict[str, int] = {}
    for tr in trials:
        states[tr.state.name] = states.get(tr.state.name, 0) + 1
    done = [tr for tr in trials if tr.value is not None]
    best = max(done, key=lambda tr: tr.value) if done else None
    row = {"workers": workers, "cache": "warm" if cache.name == "warm" else "cold", "exit_codes": codes,
           "trials": len(trials), "states": states, "wall_s": round(wall, 1),
           "trials_per_hour": round(3600 * len(trials) / wall, 1),
           "default_config_value": trials[0].value, "best_value": best.value if best else None,
           "best_trial": best.number if best else None, "best_params": best.params if best else None,
           "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    res = {"command": "python benchmarks/tune.py " + " ".join(sys.argv[1:]), "cpus": os.cpu_count(),
           "machine": platform.machine(), "python": sys.version.split()[0],
           "data": "4 species + noise x 8 WAV files, 10 s at 44.1 kHz -> 16 kHz, 1 s chunks, hybrid frontend",
           "trial": f"{args.epochs} epochs, fixed flags {' '.join(FLAGS)}", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = _data(tmp / "data")
        params = _params(args.trials, FLAGS)
        res["params"] = params
        warm = tmp / "warm"
        for workers in (1, 2):
            cold = tmp / "cold"
            shutil.rmtree(cold, ignore_errors=True)
            res["runs"].append(run(data, tmp, params, workers, cold, args.epochs))
            if not warm.exists():
                shutil.copytree(cold, warm)
            res["runs"].append(run(data, tmp, params, workers, warm, args.epochs))
        from edgeport.audio.cache import cache_size

        n, size = cache_size(warm)
        res["cache_entries"], res["cache_mb"] = n, round(size / 2**20, 1)
    dest = Path(__file__).parent / "results" / "tune.json"
    dest.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "params"}, indent=2))


if __name__ == "__main__":
    main()

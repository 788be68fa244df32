"""``edgeport tune``: Optuna search over the DS-CNN options of seed 004; many workers may share one study."""

from __future__ import annotations

import argparse
import logging
import shlex

HELP = ("search the DS-CNN's hyperparameters with Optuna (maximises validation ROC-AUC); run the same command "
        "on several processes or machines with one --storage to share a study")

log = logging.getLogger(__name__)


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    """The study options besides ``--n-trials`` (which the train arguments already hold)."""
    g = p.add_argument_group("study")
    g.add_argument("--study-name", default="edgeport-dscnn", help="the study's name in the storage")
    g.add_argument("--storage", default=None, metavar="URL",
                   help="SQLAlchemy URL, e.g. postgresql://user:pass@host/db (default sqlite:///OUTDIR/study.db)")
    g.add_argument("--outdir", default="tune_out", help="trial folders, best_params.json, best_model.keras")
    g.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    g.add_argument("--objective", default="float", choices=("float", "int8"),
                   help="validation ROC-AUC of the Keras model, or of its full-INT8 TFLite artifact")
    g.add_argument("--heartbeat-interval", type=int, default=60,
                   help="seconds between a running trial's heartbeats; a trial silent for 2 intervals is failed")
    g.add_argument("--status", action="store_true", help="print the study's trials from the storage and exit")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeport.cli import train as train_cli

    train_cli.add_arguments(p)
    for a in p._actions:  # --status needs no data folder
        if a.dest == "data_path_train":
            a.required = False
    add_tune_arguments(p)


def tune_config(args: argparse.Namespace):
    from pathlib import Path

    from edgeport.cli.args import config_from_args
    from edgeport.errors import ConfigError
    from edgeport.training.tune import DEFAULT_STUDY, TuneConfig

    if not getattr(args, "data_path_train", None):
        raise ConfigError("edgeport tune needs --data-path-train (only --status works without it)")
    outdir = Path(getattr(args, "outdir", None) or Path(args.checkpoint_path).parent / "tune")
    if getattr(args, "cache_dir", None) is None:
        args.cache_dir = str(outdir / "audio_cache")  # shared by every trial of this machine's workers
    return TuneConfig(base=config_from_args(args), outdir=outdir,
                      study_name=getattr(args, "study_name", DEFAULT_STUDY), storage=getattr(args, "storage", None),
                      n_trials=args.n_trials, timeout=getattr(args, "timeout", None),
                      objective=getattr(args, "objective", "float"),
                      heartbeat_interval=getattr(args, "heartbeat_interval", 60))


def train_command(cfg) -> str:
    """A ready ``edgeport train`` command line for ``cfg`` (options that differ from the defaults)."""
    from edgeport.cli import train as train_cli

    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    values = cfg.to_dict()
    parts = ["edgeport", "train"]
    for a in p._actions:
        if a.dest not in values or not a.option_strings:
            continue
        v = values[a.dest]
        if v == a.default:
            continue
        flag = a.option_strings[0]
        if isinstance(a, argparse._StoreTrueAction | argparse._StoreFalseAction):
            if v != a.default:
                parts.append(flag)
            continue
        if v is None:
            continue
        parts += [flag, str(v)]
    return shlex.join(parts)


def _fmt(v, spec=".4f") -> str:
    return "-" if v is None else format(v, spec)


def print_status(tc) -> int:
    from edgeport.training.tune import (
        best_trial,
        fail_stale,
        load_study,
        state_counts,
        study_rows,
    )

    study = load_study(tc)
    fail_stale(study)
    rows = study_rows(study)
    print(f"study '{tc.study_name}' in {tc.storage_url if not tc.storage else '(given --storage)'}: {len(rows)} trials "
          f"(target {tc.n_trials})  " + "  ".join(f"{k.lower()} {v}" for k, v in sorted(state_counts(study).items())))
    print(f"{'trial':>5}  {'state':<8}  {'value':>7}  {'secs':>6}  {'worker':<24}  note")
    for r in rows:
        print(f"{r['number']:>5}  {r['state']:<8}  {_fmt(r['value']):>7}  {_fmt(r['seconds'], '.0f'):>6}  "
              f"{r['worker'][:24]:<24}  {r['reason']}")
    best = best_trial(study)
    if best is not None:
        print(f"best: trial {best.number}  value {best.value:.4f}  {best.params}")
    return 0


def run(args: argparse.Namespace) -> int:
    import math

    from edgeport.training.tune import run_study

    if getattr(args, "status", False):
        from pathlib import Path

        from edgeport.cli.args import config_from_args
        from edgeport.training.tune import TuneConfig

        if not args.data_path_train:
            args.data_path_train = "."
        return print_status(TuneConfig(base=config_from_args(args), outdir=Path(args.outdir),
                                       study_name=args.study_name, storage=args.storage, n_trials=args.n_trials,
                                       heartbeat_interval=args.heartbeat_interval))
    tc = tune_config(args)
    if not getattr(args, "verbose", False):  # one line per trial; each trial's epoch log only with -v
        logging.getLogger("edgeport.training.trainer").setLevel(logging.WARNING)

    def on_trial(t, best):
        val = "-" if t.value is None or (isinstance(t.value, float) and math.isnan(t.value)) else f"{t.value:.4f}"
        note = t.user_attrs.get("fail_reason", "") if t.state.name == "FAIL" else ""
        if t.user_attrs.get("baseline"):
            note = ("the command line's configuration " + note).strip()
        best_s = f"{best.value:.4f} (trial {best.number})" if best is not None else "-"
        print(f"trial {t.number:>3} {t.state.name.lower():<8} value {val:>6}  best {best_s}  "
              f"worker {t.user_attrs.get('worker', '?')}" + (f"  {note}" if note else ""), flush=True)

    print(f"study '{tc.study_name}' ({tc.n_trials} trials, objective {tc.objective}), trial folders in {tc.outdir}/",
          flush=True)
    res = run_study(tc, on_trial=on_trial)
    counts = "  ".join(f"{k.lower()} {v}" for k, v in sorted(res.counts.items()))
    print(f"this worker ran {res.ran_here} trial(s) in {res.seconds:.0f} s; the study holds {res.n_trials}: {counts}")
    if res.best_number is None:
        print("no trial has completed yet")
        return 1
    print(f"best: trial {res.best_number}  validation ROC-AUC {res.best_value:.4f}  ({tc.objective})")
    print(f"params:  {tc.outdir}/best_params.json")
    if res.best_model is not None:
        print(f"model:   {res.best_model}")
    print("train it again with:")
    print("  " + train_command(res.best_config))
    return 0

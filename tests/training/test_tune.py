"""edgeport tune: the study loop (failures recorded, --n-trials counts the whole study, resume), the printed
train command, bad input, and real multi-process studies on SQLite and on a throwaway PostgreSQL server with a
worker killed mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeport.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
#: Fixed options of the tiny trials (the tests' TINY config, as command-line flags).
TINY_FLAGS = ["--sample-rate", "16000", "--chunk-duration", "0.5", "--spec-width", "32", "--fft-length", "256",
              "--num-mels", "16", "--num-workers", "0", "--max-chunks-per-file", "2", "--no-progress"]


def _tc(tmp_path, data, n_trials, **kw):
    from edgeport.training.tune import TuneConfig

    base = TrainConfig(data_path_train=str(data), checkpoint_path=str(tmp_path / "ck" / "m.keras"), num_workers=0)
    return TuneConfig(base=base, outdir=tmp_path / "out", n_trials=n_trials, **kw)


def test_study_loop_records_failures_counts_and_resumes(tmp_path, monkeypatch):
    """A trial that raises is FAIL with its reason and the study goes on; --n-trials counts the whole study;
    best params and the best trial's model are written out; re-running resumes the count."""
    import optuna

    from edgeport.training import trainer, tune
    from edgeport.training.trainer import TrainResult, output_paths

    calls = {"n": 0}

    def fake_train(cfg, *, on_epoch=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("out of memory building a 512-wide model")
        score = 0.5 + 0.4 * (np.log10(cfg.learning_rate) + 4) / 2  # depends on the sampled parameter
        for ep in (1, 2, 3):
            on_epoch({"epoch": ep, "val_roc_auc": score * ep / 3})
        paths = output_paths(cfg.checkpoint)
        paths["model"].write_text(f"model lr={cfg.learning_rate}")
        paths["config"].write_text("{}")
        return TrainResult(paths=paths, class_names=["a"], history=[], epochs_run=3, best_epoch=3, val_loss=0.1,
                           val_roc_auc=score, seconds=0.0)

    monkeypatch.setattr(trainer, "train", fake_train)
    monkeypatch.setattr("edgeport.audio.dataset.scan_dataset", lambda *a, **k: None)
    seen = []
    res = tune.run_study(_tc(tmp_path, "data", 7), on_trial=lambda t, best: seen.append((t.number, t.state.name)))
    assert res.n_trials == 7 and res.ran_here == 7 and len(seen) == 7
    study = optuna.load_study(study_name=tune.DEFAULT_STUDY, storage=res.storage)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(7))
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].user_attrs["fail_reason"].startswith("MemoryError: out of memory")
    assert all(t.state.name in ("COMPLETE", "PRUNED", "FAIL") for t in trials)
    best = study.best_trial
    assert res.best_number == best.number and res.best_value == pytest.approx(best.value)
    written = json.loads((tmp_path / "out" / "best_params.json").read_text())
    assert written["trial"] == best.number and written["params"] == best.params
    assert written["train_config"]["learning_rate"] == pytest.approx(best.params["learning_rate"])
    assert (tmp_path / "out" / "best_model.keras").read_text() == f"model lr={best.params['learning_rate']}"
    for t in trials:
        tj = json.loads((tmp_path / "out" / f"trial_{t.number:04d}" / "trial.json").read_text())
        assert tj["params"] == t.params and tj["worker"] == t.user_attrs["worker"]
    # the study is complete: the same command runs nothing; a larger count runs only the difference
    assert tune.run_study(_tc(tmp_path, "data", 7)).ran_here == 0
    again = tune.run_study(_tc(tmp_path, "data", 9))
    assert again.ran_here == 2 and again.n_trials == 9
    rows = tune.study_rows(study)
    assert len(rows) == 9 and rows[failed[0].number]["reason"].startswith("MemoryError")


def test_printed_train_command_parses_back_to_the_best_config(tmp_path):
    import shlex

    from edgeport.cli.args import config_from_args
    from edgeport.cli.main import build_parser
    from edgeport.cli.tune import train_command

    cfg = TrainConfig(data_path_train=str(tmp_path / "my data"), checkpoint_path=str(tmp_path / "c.keras"),
                      alpha=0.5, use_se=False, use_inverted_residual=False, use_attention_pooling=True,
                      optimizer="adamw", weight_decay=1e-4, learning_rate=0.0031, grad_clip=0.0, batch_size=16,
                      num_workers=0, spec_augment=False, cache_dir=str(tmp_path / "cache"))
    cmd = train_command(cfg)
    argv = shlex.split(cmd)
    assert argv[:2] == ["edgeport", "train"]
    back = config_from_args(build_parser().parse_args(argv[1:]))
    assert back == cfg


@pytest.mark.parametrize("argv, message", [
    (["tune", "--n-trials", "2"], "needs --data-path-train"),
    (["tune", "--status", "--outdir", "{tmp}/none", "--study-name", "nope"], "no study storage at"),
    (["tune", "--data-path-train", "{tmp}", "--n-trials", "0"], "--n-trials must be positive"),
    (["tune", "--data-path-train", "{tmp}/missing", "--outdir", "{tmp}/o"], "Training data folder not found"),
    (["tune", "--status", "--storage", "postgresql+psycopg2://u@127.0.0.1:1/db"], "cannot open the study storage"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, message):
    from edgeport.cli.main import main

    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()  # nothing half-written


# ------------------------------------------------------------------ real multi-process studies (slow)


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1")
    return env


def _worker(argv, log: Path):
    f = open(log, "w")  # noqa: SIM115 - closed by the process ending; read by the test
    return subprocess.Popen([sys.executable, "-m", "edgeport.cli.main", *argv], stdout=f, stderr=subprocess.STDOUT,
                            env=_env(), cwd=str(log.parent))


def _states(storage, name):
    import optuna

    return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.mark.slow
def test_two_sqlite_workers_share_one_study(tmp_path, small_data):
    """`edgeport train --tune` and `edgeport tune` on the same default SQLite file: one study of 2 trials."""
    ck = tmp_path / "ck" / "model.keras"
    common = ["--data-path-train", str(small_data), *TINY_FLAGS, "--epochs", "1", "--n-trials", "2"]
    a = _worker(["train", "--tune", "--checkpoint-path", str(ck), *common], tmp_path / "a.log")
    b = _worker(["tune", "--outdir", str(ck.parent / "tune"), *common], tmp_path / "b.log")
    assert a.wait(timeout=600) == 0, (tmp_path / "a.log").read_text()[-3000:]
    assert b.wait(timeout=600) == 0, (tmp_path / "b.log").read_text()[-3000:]
    trials = _states(f"sqlite:///{(ck.parent / 'tune' / 'study.db').resolve()}", "edgeport-dscnn")
    assert len(trials) == 2 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    assert any(t.state.name == "COMPLETE" for t in trials)
    assert {t.user_attrs["worker"].split(":")[1] for t in trials} == {str(a.pid), str(b.pid)}
    out = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert out.count(" best ") >= 2 and "edgeport train --data-path-train" in out
    assert (ck.parent / "tune" / "best_model.keras").is_file()


@pytest.fixture
def postgres_url():
    from tests._support.postgres import ensure_bin, postgres_server

    bindir = ensure_bin()
    if bindir is None:
        if os.environ.get("EDGEPORT_REQUIRE_POSTGRESQL"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is required and could not be installed")
        pytest.skip("PostgreSQL binaries not found (tools/ensure-postgresql.sh installs them)")
    with postgres_server(bindir) as url:
        yield url


@pytest.mark.slow
def test_postgres_study_survives_a_killed_worker_and_resumes(tmp_path, postgres_url):
    """2 workers on one PostgreSQL study; one is SIGKILLed mid-trial: its trial is marked failed (heartbeat),
    none is left running, and re-running the command finishes the count."""
    from edgeport.audio.synthetic import SyntheticSpec, generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, SyntheticSpec(n_species=3, files_per_class=3, noise_files=2, duration=0.6,
                                         sample_rate=16000, difficulty=0.0), seed=4)
    out = tmp_path / "out"
    common = ["tune", "--data-path-train", str(data), *TINY_FLAGS, "--epochs", "2", "--storage", postgres_url,
              "--study-name", "pg", "--outdir", str(out), "--heartbeat-interval", "1"]
    a = _worker([*common, "--n-trials", "2"], tmp_path / "a.log")
    b = _worker([*common, "--n-trials", "2"], tmp_path / "b.log")
    t0, killed = time.time(), None
    while killed is None and time.time() - t0 < 300:
        for tj in out.glob("trial_*/trial.json"):
            info = json.loads(tj.read_text())
            if info["worker"].endswith(f":{b.pid}"):
                b.send_signal(signal.SIGKILL)
                killed = info["number"]
                break
        if b.poll() is not None and killed is None:
            pytest.fail("worker b ended before starting a trial:\n" + (tmp_path / "b.log").read_text()[-3000:])
        time.sleep(0.2)
    assert killed is not None, "worker b never started a trial"
    b.wait(timeout=30)
    assert a.wait(timeout=600) == 0, (tmp_path / "a.log").read_text()[-3000:]
    time.sleep(2.5)  # past the grace period (2 heartbeat intervals) of the killed trial
    resumed = _worker([*common, "--n-trials", "3"], tmp_path / "c.log")
    assert resumed.wait(timeout=600) == 0, (tmp_path / "c.log").read_text()[-3000:]
    trials = _states(postgres_url, "pg")
    states = {t.number: t.state.name for t in trials}
    assert len(trials) == 3 and set(states.values()) <= {"COMPLETE", "PRUNED", "FAIL"}, states
    assert states[killed] == "FAIL" and "fail_reason" not in trials[killed].user_attrs
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 2
    status = subprocess.run([sys.executable, "-m", "edgeport.cli.main", "tune", "--status", "--storage", postgres_url,
                             "--study-name", "pg"], check=False, env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 0, status.stderr
    assert "3 trials" in status.stdout and "worker stopped (no heartbeat)" in status.stdout
    assert "running" not in status.stdout.lower()

"""``edgeport.train`` and ``edgeport.evaluate``: the library calls under ``edgeport train`` and ``edgeport
evaluate`` (docs/python-api.md). ``edgeport.export`` is ``edgeport.export.export``; the seed's conversion
functions are in ``edgeport.conversion``."""

from __future__ import annotations

from pathlib import Path


def train(data_path_train: str | Path | None = None, checkpoint_path: str | Path | None = None, *, config=None,
          on_epoch=None, **options):
    """Train an audio classifier as ``edgeport train`` does; returns the ``TrainResult`` (``model_path``,
    ``config_path``, ``val_roc_auc``, ...). ``options`` are ``edgeport train``'s flags as keywords (``epochs``,
    ``audio_frontend``, ``qat``, ...); or pass a ready ``TrainConfig`` as ``config``."""
    from edgeport.errors import ConfigError
    from edgeport.training.config import TrainConfig
    from edgeport.training.trainer import train as run_training

    given = {k: str(v) for k, v in (("data_path_train", data_path_train), ("checkpoint_path", checkpoint_path))
             if v is not None}
    if config is None:
        try:
            config = TrainConfig(**given, **options)
        except TypeError as e:
            raise ConfigError(f"edgeport.train: {e}; the keywords are edgeport train's options") from None
    elif given or options:
        raise ConfigError("edgeport.train: pass a TrainConfig or keywords, not both")
    return run_training(config, on_epoch=on_epoch)


def evaluate(artifact: str | Path, data_path_test: str | Path, *, outdir: str | Path | None = None,
             stem: str = "evaluation", force: bool = False, plots: bool = True, **options):
    """Evaluate an audio classifier artifact (``.keras``, ``.tflite``, ``.onnx``, SavedModel folder) on a
    labelled test folder as ``edgeport evaluate`` does; returns the ``EvaluationResult`` (``metrics``,
    ``latency``, ...). With ``outdir`` the reports (JSON, CSVs, plots, HTML) are written there as
    ``<stem>.*`` (earlier ones need ``force``). ``options`` are ``evaluate_audio_artifact``'s keywords
    (``model_config``, ``pooling``, ``overlap``, ``benchmark_latency``, ...)."""
    from edgeport.evaluation.audio import evaluate_audio_artifact

    if outdir is None:
        return evaluate_audio_artifact(artifact, data_path_test, **options)
    from edgeport.evaluation.report import plan_reports, write_reports

    with plan_reports(Path(outdir), stem=stem, force=force) as plan:
        result = evaluate_audio_artifact(artifact, data_path_test, **options)
        write_reports(result, Path(outdir), stem=stem, plots=plots, plan=plan)
        plan.commit(prune=True)
    return result

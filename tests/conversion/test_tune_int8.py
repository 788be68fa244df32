"""`edgeport tune --objective int8`: a trial's value is the full-INT8 TFLite artifact's validation ROC-AUC."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_int8_objective_scores_the_converted_artifact(tmp_path, trained_model, audio_folder):
    from edgeport.audio.dataset import scan_dataset
    from edgeport.evaluation.metrics import roc_auc_macro
    from edgeport.runtimes.keras import KerasRunner
    from edgeport.training import data as D
    from edgeport.training.config import TrainConfig
    from edgeport.training.tune import TuneConfig, _model_config_json, int8_val_roc_auc

    from .conftest import MODEL

    model = trained_model("hybrid")
    cfg = TrainConfig(data_path_train=str(audio_folder), checkpoint_path=str(model), **{**MODEL, "val_split": 0.25})
    tc = TuneConfig(base=cfg, outdir=tmp_path, objective="int8")
    value = int8_val_roc_auc(model, cfg, tmp_path / "int8", tc)
    # the float model's ROC-AUC on the same validation split (same seed, split and chunks)
    ds = scan_dataset(cfg.data_path_train, max_samples=cfg.max_samples, seed=cfg.seed)
    _, va = D.split_dataset(ds, cfg.val_split, cfg.seed)
    val = ds.subset(va)
    x, y, _ = D.load_fixed(val.files, val.labels, _model_config_json(model), chunks_per_file=cfg.max_chunks_per_file,
                           max_duration=cfg.max_duration)
    runner = KerasRunner.open(model)
    out, failed = runner.run({runner.inputs[0].name: x})
    assert not failed.any() and len(val) > 0
    float_auc = roc_auc_macro(y, next(iter(out.values())))
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(float_auc, abs=0.03), (value, float_auc)
    assert (tmp_path / "int8" / "tiny_quantized.tflite").is_file()


def test_int8_objective_needs_a_validation_split(tmp_path, trained_model, audio_folder):
    from edgeport.errors import ConfigError
    from edgeport.training.config import TrainConfig
    from edgeport.training.tune import TuneConfig, int8_val_roc_auc

    from .conftest import MODEL

    model = trained_model("hybrid")
    cfg = TrainConfig(data_path_train=str(audio_folder), checkpoint_path=str(model), **{**MODEL, "val_split": 0.0})
    with pytest.raises(ConfigError, match="leaves no file"):
        int8_val_roc_auc(model, cfg, tmp_path / "int8", TuneConfig(base=cfg, outdir=tmp_path, objective="int8"))

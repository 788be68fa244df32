"""`edgeport tune --objective int8`: a trial's value is the full-INT8 TFLite artifact's validation ROC-AUC."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_int8_objective_scores_the_converted_artifact(tmp_path, trained_model, audio_folder):
    from edgeport.training.config import TrainConfig
    from edgeport.training.trainer import output_paths
    from edgeport.training.tune import TuneConfig, int8_val_roc_auc

    from .conftest import MODEL

    model = trained_model("hybrid")
    cfg = TrainConfig(data_path_train=str(audio_folder), checkpoint_path=str(model), **MODEL)
    tc = TuneConfig(base=cfg, outdir=tmp_path, objective="int8")
    value = int8_val_roc_auc(model, cfg, tmp_path / "int8", tc)
    # the float model's ROC-AUC on the same validation split (same seed, split and chunks), from training
    state = json.loads(output_paths(model)["state"].read_text())
    float_auc = state["batchnorm_recalibration"]["val_roc_auc_after"]
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(float_auc, abs=0.03), (value, float_auc)
    assert (tmp_path / "int8" / "tiny_quantized.tflite").is_file()

"""Every valid frontend x magnitude-scaling pair trains (a step) and saves/loads with identical outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.families.audio.frontends import valid_pairs

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("audio_matrix")]


@pytest.mark.parametrize(("frontend", "mag_scale"), valid_pairs())
def test_pair_trains_and_round_trips(frontend, mag_scale, small_data, tmp_path, make_config):
    from edgeport.audio.dataset import scan_dataset
    from edgeport.families.audio.contract import model_input_from_audio
    from edgeport.families.audio.loading import load_trained_model
    from edgeport.training.trainer import train

    r = train(make_config(small_data, tmp_path / "m.keras", audio_frontend=frontend, mag_scale=mag_scale,
                          epochs=1, steps_per_epoch=1, val_split=0.0, bn_recalibration_batches=1, n_mfcc=16,
                          small_body=True))  # the frontend is under test, not the body
    model, cfg = load_trained_model(r.model_path)
    assert (cfg.audio_frontend, cfg.mag_scale) == (frontend, mag_scale)
    files = scan_dataset(small_data).files
    x = np.concatenate([model_input_from_audio(f, cfg, max_chunks=1) for f in files[:6]])
    assert x.shape[1:] == cfg.input_shape == tuple(model.input_shape[1:])
    p1 = np.asarray(model(x, training=False))
    p2 = np.asarray(load_trained_model(r.model_path)[0](x, training=False))
    np.testing.assert_array_equal(p1, p2)
    assert np.all(np.isfinite(p1)) and p1.shape == (6, len(cfg.class_names))


def test_invalid_pairs_refused():
    from edgeport.errors import ConfigError
    from edgeport.families.audio.model_config import AudioModelConfig

    for fe in ("mfcc", "log_mel"):
        for ms in ("pwl", "pcen", "db"):
            with pytest.raises(ConfigError, match=f"Frontend '{fe}' takes no magnitude scaling '{ms}'"):
                AudioModelConfig(audio_frontend=fe, mag_scale=ms)

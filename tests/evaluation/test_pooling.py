"""Chunk -> file pooling: avg, max, lme (formula, limits, stability), registry, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.errors import ConfigError, DataError
from edgeport.evaluation.pooling import DEFAULT_LME_SHARPNESS, POOLINGS, pool_scores


def test_registered_names():
    assert POOLINGS.names() == ["avg", "max", "lme"]
    with pytest.raises(ConfigError, match="Available"):
        pool_scores(np.ones((2, 3)), "median")


def test_avg_and_max_by_hand():
    s = np.array([[0.1, 0.9], [0.3, 0.5], [0.2, 0.1]])
    np.testing.assert_allclose(pool_scores(s, "avg"), [0.2, 0.5])
    np.testing.assert_allclose(pool_scores(s, "max"), [0.3, 0.9])


def test_lme_matches_formula_and_lies_between_avg_and_max():
    rng = np.random.default_rng(0)
    s = rng.random((7, 4))
    for r in (0.5, DEFAULT_LME_SHARPNESS, 50.0):
        want = np.log(np.mean(np.exp(r * s), axis=0)) / r
        got = pool_scores(s, "lme", sharpness=r)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.all(got >= s.mean(axis=0) - 1e-12) and np.all(got <= s.max(axis=0) + 1e-12)
    # two chunks 0.9 and 0.1 at r = 10: 0.9 + log((1 + e^-8) / 2) / 10
    np.testing.assert_allclose(pool_scores(np.array([[0.9], [0.1]]), "lme"), [0.9 + np.log((1 + np.exp(-8)) / 2) / 10])


def test_lme_limits_and_stability():
    s = np.array([[0.2, 0.7], [0.6, 0.1]])
    np.testing.assert_allclose(pool_scores(s, "lme", sharpness=1e-6), s.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(pool_scores(s, "lme", sharpness=1e6), s.max(axis=0), atol=1e-5)
    big = np.array([[1000.0, -1000.0], [999.0, -1001.0]])  # logits: exp(r * x) would overflow
    got = pool_scores(big, "lme", sharpness=10.0)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, big.max(axis=0) + np.log((1 + np.exp(-10)) / 2) / 10)


def test_single_chunk_is_identity_and_bad_input_refused():
    row = np.array([0.3, 0.8])
    for m in POOLINGS.names():
        np.testing.assert_allclose(pool_scores(row[None], m), row)
    with pytest.raises(DataError, match="no chunks"):
        pool_scores(np.zeros((0, 2)), "avg")
    with pytest.raises(DataError, match="NaN"):
        pool_scores(np.array([[np.nan, 0.1]]), "max")
    with pytest.raises(ConfigError, match="sharpness"):
        pool_scores(row[None], "lme", sharpness=0)

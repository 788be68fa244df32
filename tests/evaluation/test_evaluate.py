"""evaluate_scores / evaluate_runner with a small numpy runner: pooling, batching, failures, sigmoid, latency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeport.errors import ConfigError, DataError
from edgeport.evaluation import (
    evaluate_runner,
    evaluate_scores,
    multilabel_metrics,
    pool_scores,
    sigmoid,
)
from edgeport.runtimes.base import Runner
from edgeport.sources.base import TensorSpec

C = 4
NAMES = ["amerob", "norcar", "blujay", "houspa"]


class LinearRunner(Runner):
    """logits = x @ W; a row of all zeros raises (like an INT8 model dividing by zero on silence)."""

    name = "linear"

    def __init__(self, w: np.ndarray, outputs: tuple[str, ...] = ("logits",)):
        self.w = w
        self.inputs = (TensorSpec("x", (None, w.shape[0])),)
        self.output_names = outputs
        self.calls: list[int] = []

    @classmethod
    def open(cls, path: Path, **kwargs) -> LinearRunner:
        raise NotImplementedError

    def infer(self, feeds):
        x = feeds["x"]
        self.calls.append(x.shape[0])
        if np.any(np.all(x == 0, axis=1)):
            raise RuntimeError("division by zero")
        out = {"logits": x @ self.w}
        if "embedding" in self.output_names:
            out["embedding"] = x[:, :C]
        return {k: out[k] for k in self.output_names}


def make_files(n_files=12, seed=0):
    """(file_id, labels, inputs (n_chunks, 6), times) with class-dependent inputs, chunk counts 1..4."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_files):
        lab = np.zeros(C)
        if i % 4 != 3:  # every fourth file is noise
            lab[i % C] = 1
        n = 1 + i % 4
        x = rng.normal(size=(n, 6)) * 0.5
        x[:, :C] += 2 * lab
        t = np.stack([np.arange(n) * 3.0, np.arange(n) * 3.0 + 3.0], axis=1)
        items.append((f"site/f{i:02d}.wav", lab, x.astype(np.float32), t))
    return items


@pytest.fixture(scope="module")
def runner():
    w = np.zeros((6, C), dtype=np.float32)
    w[:C, :C] = 3 * np.eye(C) - 1
    return LinearRunner(w)


def test_runner_equals_scores_path(runner):
    runner.calls.clear()
    items = make_files()
    res = evaluate_runner(runner, items, NAMES, batch_size=5, apply_sigmoid=True, pooling="lme", progress=False)
    chunk = [sigmoid(x.astype(np.float64) @ runner.w) for _, _, x, _ in items]
    ref = evaluate_scores([f for f, *_ in items], chunk, [t for *_, t in items], np.stack([lab for _, lab, _, _ in items]),
                          NAMES, pooling="lme")
    np.testing.assert_allclose(res.file_scores, ref.file_scores, rtol=1e-6)
    np.testing.assert_allclose(res.file_scores[5], pool_scores(chunk[5], "lme"), rtol=1e-6)
    assert res.metrics["cmap"] == pytest.approx(ref.metrics["cmap"], abs=1e-6)
    assert res.total_chunks == sum(x.shape[0] for _, _, x, _ in items) and res.failed_chunks == 0
    assert res.info["output"] == "logits" and res.info["apply_sigmoid"] is True
    assert max(runner.calls) <= 5  # chunks of several files batched, never above batch_size
    # batching does not change the numbers
    big = evaluate_runner(runner, items, NAMES, batch_size=64, apply_sigmoid=True, pooling="lme", progress=False)
    np.testing.assert_allclose(big.file_scores, res.file_scores, rtol=1e-6)


def test_failed_chunks_are_counted_and_files_without_any_left_out(runner):
    items = make_files()
    f, lab, x, t = items[3]  # 4 chunks: make two fail
    x = x.copy()
    x[[0, 2]] = 0
    items[3] = (f, lab, x, t)
    f, lab, x, t = items[4]  # 1 chunk: fails entirely
    items[4] = (f, lab, np.zeros_like(x), t)
    items.append(("empty.wav", np.eye(C)[0], np.zeros((0, 6), np.float32), None))
    res = evaluate_runner(runner, items, NAMES, batch_size=4, apply_sigmoid=True, progress=False)
    assert res.failed_chunks == 3
    assert res.failed_files == [items[4][0], "empty.wav"]
    assert len(res.file_ids) == len(items) - 2
    k = res.file_ids.index(items[3][0])
    ok = sigmoid(items[3][2][[1, 3]].astype(np.float64) @ runner.w)
    np.testing.assert_allclose(res.file_scores[k], ok.mean(axis=0), rtol=1e-6)  # only the chunks that ran
    assert np.isnan(res.chunk_scores[k][0]).all() and np.isfinite(res.chunk_scores[k][1]).all()
    json.dumps(res.to_dict(), allow_nan=False)


def test_output_selection_and_class_count(runner):
    two = LinearRunner(runner.w, outputs=("embedding", "logits"))
    items = make_files(4)
    with pytest.raises(ConfigError, match="cannot tell"):
        evaluate_runner(two, items, NAMES, progress=False)
    res = evaluate_runner(two, items, NAMES, output_name="logits", apply_sigmoid=True, progress=False)
    assert res.info["output"] == "logits"
    with pytest.raises(ConfigError, match="no output 'probs'"):
        evaluate_runner(two, items, NAMES, output_name="probs", progress=False)
    with pytest.raises(ConfigError, match="4 scores per chunk but 3 class names"):
        evaluate_runner(runner, [(f, lab[:3], x, t) for f, lab, x, t in items], NAMES[:3], progress=False)
    with pytest.raises(DataError, match="label vector has 3 entries"):
        evaluate_runner(runner, [(f, lab[:3], x, t) for f, lab, x, t in items], NAMES, progress=False)
    with pytest.raises(ConfigError, match="Unknown pooling"):
        evaluate_runner(runner, items, NAMES, pooling="mean", progress=False)


def test_logits_without_sigmoid_warn(runner, caplog):
    with caplog.at_level("WARNING"):
        res = evaluate_runner(runner, make_files(4), NAMES, progress=False)
    assert "outside [0, 1]" in caplog.text
    assert res.info["apply_sigmoid"] is False


def test_latency_per_chunk(runner):
    res = evaluate_runner(runner, make_files(6), NAMES, batch_size=8, apply_sigmoid=True, benchmark_latency=True,
                          latency_repeats=5, latency_warmup=1, progress=False)
    lat = res.latency
    assert lat["batched_rows"] == 8 and lat["chunks"] == res.total_chunks
    for k in ("batch_1", "batched"):
        assert 0 < lat["per_chunk_ms"][k]["p50_ms"] <= lat["per_chunk_ms"][k]["p90_ms"]
    plain = evaluate_runner(runner, make_files(6), NAMES, apply_sigmoid=True, progress=False)
    assert "per_chunk_ms" not in plain.latency


def test_evaluate_scores_checks_and_dict_inputs():
    ids = ["a", "b", "c"]
    y = np.array([[1, 0], [0, 1], [0, 0]])
    chunks = [np.array([[0.9, 0.1], [0.7, 0.3]]), np.array([[0.2, 0.6]]), np.array([[0.1, 0.2]])]
    res = evaluate_scores(ids, chunks, None, y, ["x", "y"], pooling="max")
    np.testing.assert_allclose(res.file_scores, [[0.9, 0.3], [0.2, 0.6], [0.1, 0.2]])
    assert res.metrics == multilabel_metrics(y, res.file_scores, ["x", "y"])
    assert res.headline["cmap"] == 1.0 and np.isnan(res.chunk_times[0]).all()
    d = res.to_dict()
    assert d["pooling"] == {"method": "max", "lme_sharpness": None} and d["files"]["evaluated"] == 3
    with pytest.raises(DataError, match="labels are"):
        evaluate_scores(ids, chunks, None, y[:2], ["x", "y"])
    with pytest.raises(DataError, match="chunk times"):
        evaluate_scores(ids, chunks, [np.zeros((5, 2))] * 3, y, ["x", "y"])
    with pytest.raises(DataError, match="no file could be scored"):
        evaluate_scores(ids, [np.full((1, 2), np.nan)] * 3, None, y, ["x", "y"])


def test_two_input_model_takes_dict_feeds():
    class TwoInputs(LinearRunner):
        def __init__(self):
            super().__init__(np.eye(2, dtype=np.float32))
            self.inputs = (TensorSpec("a", (None, 2)), TensorSpec("b", (None, 2)))

        def infer(self, feeds):
            return {"logits": feeds["a"] + feeds["b"]}

    r = TwoInputs()
    a = np.array([[0.1, 0.2], [0.3, 0.0]], np.float32)
    res = evaluate_runner(r, [("f", [1, 0], {"a": a, "b": a}, None)], ["x", "y"], pooling="avg", progress=False)
    np.testing.assert_allclose(res.file_scores[0], (2 * a).mean(axis=0), rtol=1e-6)
    with pytest.raises(ConfigError, match="as a dict by name"):
        evaluate_runner(r, [("f", [1, 0], a, None)], ["x", "y"], progress=False)


def test_chunk_times_from_starts():
    from edgeport.evaluation import chunk_times_from_starts

    # 10 s file at 100 Hz, 3 s chunks every 1.5 s, last chunk moved back to cover the tail
    got = chunk_times_from_starts([0, 150, 300, 450, 600, 700], 300, 1000, 100)
    np.testing.assert_allclose(got[:, 0], [0, 1.5, 3, 4.5, 6, 7])
    np.testing.assert_allclose(got[:, 1], [3, 4.5, 6, 7.5, 9, 10])
    np.testing.assert_allclose(chunk_times_from_starts([0], 300, 120, 100), [[0.0, 1.2]])  # short file, padded

"""Metrics against scikit-learn on random data (with ties) and against hand-computed small cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from edgeport.errors import DataError
from edgeport.evaluation import metrics as M


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    n, C = 150, 6
    y = (rng.random((n, C)) < 0.25).astype(int)
    y[:15] = 0  # noise clips
    y[:, 5] = 0  # a class with no positive
    s = np.round(0.6 * rng.random((n, C)) + 0.35 * y, 2)  # rounding makes ties
    return y, s


def test_ap_auc_against_sklearn(data):
    y, s = data
    ap, auc = M.average_precision(y, s), M.roc_auc(y, s)
    for c in range(5):
        assert ap[c] == pytest.approx(skm.average_precision_score(y[:, c], s[:, c]), abs=1e-12)
        assert auc[c] == pytest.approx(skm.roc_auc_score(y[:, c], s[:, c]), abs=1e-12)
    assert math.isnan(ap[5]) and math.isnan(auc[5])
    assert M.cmap(y, s) == pytest.approx(skm.average_precision_score(y[:, :5], s[:, :5], average="macro"), abs=1e-12)
    assert M.roc_auc_micro(y, s) == pytest.approx(skm.roc_auc_score(y, s, average="micro"), abs=1e-12)
    rows = y.sum(axis=1) > 0
    assert M.sample_map(y, s) == pytest.approx(
        skm.average_precision_score(y[rows], s[rows], average="samples"), abs=1e-12)


def test_prf_against_sklearn(data):
    y, s = data
    got = M.prf_at_threshold(y, s, 0.5)
    pred = s >= 0.5
    for avg in ("micro",):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        assert (got["precision_micro"], got["recall_micro"], got["f1_micro"]) == pytest.approx((p, r, f), abs=1e-12)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    # macro over the classes with a positive (class 5 has none)
    assert got["precision_macro"] == pytest.approx(p[:5].mean(), abs=1e-12)
    assert got["recall_macro"] == pytest.approx(r[:5].mean(), abs=1e-12)
    assert got["f1_macro"] == pytest.approx(f[:5].mean(), abs=1e-12)
    assert got["per_class"]["recall"][5] is None


def test_thresholds_maximise_f1_by_brute_force(data):
    y, s = data
    opt = M.optimise_thresholds(y, s)
    for c in range(5):
        best = max(skm.f1_score(y[:, c], s[:, c] >= t) for t in np.unique(s[:, c]))
        assert opt["per_class"]["f1"][c] == pytest.approx(best, abs=1e-12)
        t = opt["per_class"]["threshold"][c]
        assert skm.f1_score(y[:, c], s[:, c] >= t) == pytest.approx(best, abs=1e-12)
    assert opt["per_class"]["threshold"][5] is None
    best = max(skm.f1_score(y.ravel(), s.ravel() >= t) for t in np.unique(s))
    g = opt["global"]
    assert g["f1_micro"] == pytest.approx(best, abs=1e-12)
    assert skm.f1_score(y.ravel(), s.ravel() >= g["threshold"]) == pytest.approx(best, abs=1e-12)


def test_det_against_sklearn_and_eer(data):
    y, s = data
    det = M.det_curve(y, s, max_points=10**6)
    fpr, fnr, thr = skm.det_curve(y.ravel(), s.ravel())
    at = dict(zip(det["threshold"], zip(det["fpr"], det["fnr"], strict=True), strict=True))
    for t, a, b in zip(thr, fpr, fnr, strict=True):
        assert at[t] == pytest.approx((a, b), abs=1e-12)
    assert np.all(np.diff(det["fpr"]) >= 0) and np.all(np.diff(det["fnr"]) <= 0)
    # EER lies between the two points where FPR - FNR changes sign
    d = np.asarray(det["fpr"]) - np.asarray(det["fnr"])
    k = int(np.argmax(d >= 0))
    lo, hi = sorted([det["fpr"][k - 1], det["fpr"][k]])
    assert lo <= det["eer"] <= hi
    thin = M.det_curve(y, s, max_points=20)
    assert len(thin["fpr"]) <= 20 and thin["fpr"][0] == det["fpr"][0] and thin["fpr"][-1] == det["fpr"][-1]


def test_hand_computed_small_case():
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    s = np.array([[0.9, 0.2], [0.6, 0.4], [0.3, 0.8], [0.5, 0.1]])
    # class 0 ranking: 0.9(+) 0.6(-) 0.5(-) 0.3(+) -> AP = (1/1 + 2/4) / 2 = 0.75; AUC: pairs 4, won 2 -> 0.5
    # class 1 ranking: 0.8(-) 0.4(+) ...           -> AP = 1/2;  AUC: positive beats 2 of 3 negatives -> 2/3
    np.testing.assert_allclose(M.average_precision(y, s), [0.75, 0.5])
    np.testing.assert_allclose(M.roc_auc(y, s), [0.5, 2 / 3])
    # sample-wise: row 0 true class top -> 1; row 1 true class 1 (0.4) below 0.6 -> 1/2; row 2 true top? 0.3 < 0.8 -> 1/2
    assert M.sample_map(y, s) == pytest.approx((1 + 0.5 + 0.5) / 3)
    # at 0.5: class 0 predicts rows 0, 1, 3 -> TP1 FP2 FN1; class 1 predicts row 2 -> TP0 FP1 FN1
    p = M.prf_at_threshold(y, s, 0.5)
    assert p["precision_micro"] == pytest.approx(1 / 4)
    assert p["recall_micro"] == pytest.approx(1 / 3)
    assert p["f1_macro"] == pytest.approx((2 / 5 + 0) / 2)
    conf = M.confusion_top1(y, s, ["a", "b"], threshold=0.5)
    # true a -> a (0.9), true b -> a (0.6), true a -> b (0.8), noise -> a (0.5 >= 0.5)
    assert conf["labels"] == ["a", "b", "none"]
    assert conf["matrix"] == [[1, 1, 0], [1, 0, 0], [1, 0, 0]]
    assert conf["accuracy"] == pytest.approx(0.25)
    conf = M.confusion_top1(y, s, ["a", "b"], threshold=0.55)  # noise row now predicted none
    assert conf["matrix"][2] == [0, 0, 1]


def test_confusion_skips_multi_label_rows_and_names_none_safely():
    y = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    s = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.7], [0.1, 0.2, 0.3]])
    conf = M.confusion_top1(y, s, ["x", "none", "z"], 0.5)
    assert conf["labels"][-1] == "(none)"
    assert conf["rows_used"] == 2 and conf["rows_multi_label_excluded"] == 1
    assert np.trace(np.asarray(conf["matrix"])) == 2


def test_bootstrap_ci_seeded_and_contains_ap(data):
    y, s = data
    a = M.bootstrap_ap_ci(y, s, n_boot=200, seed=3)
    b = M.bootstrap_ap_ci(y, s, n_boot=200, seed=3)
    c = M.bootstrap_ap_ci(y, s, n_boot=200, seed=4)
    assert a == b and a["ci_low"] != c["ci_low"]
    for k in range(5):
        assert a["ci_low"][k] <= a["ap"][k] <= a["ci_high"][k]
        assert a["ci_high"][k] - a["ci_low"][k] > 0
        assert a["n_valid"][k] == 200
    assert a["ap"][5] is None and a["ci_low"][5] is None and a["n_valid"][5] == 0
    # the same resamples by hand for one class
    rng = np.random.default_rng(3)
    aps = [skm.average_precision_score(y[i, 0], s[i, 0]) for i in (rng.integers(0, len(y), len(y)) for _ in range(200))]
    assert a["ci_low"][0] == pytest.approx(np.percentile(aps, 2.5), abs=1e-12)
    assert a["ci_high"][0] == pytest.approx(np.percentile(aps, 97.5), abs=1e-12)


def test_full_report_has_no_nan_and_lists_exclusions(data):
    y, s = data
    names = [f"c{i}" for i in range(6)]
    y = y.copy()
    y[:, 4] = 1  # a class with no negative: out of the ROC-AUC macro only
    r = M.multilabel_metrics(y, s, names, species_report=True, n_boot=50)
    json.dumps(r, allow_nan=False)  # raises on any NaN/inf
    assert r["excluded"] == {"no_positives": ["c5"], "no_negatives": ["c4"]}
    auc = M.roc_auc(y, s)
    assert r["roc_auc_macro"] == pytest.approx(np.mean(auc[:4]))
    assert r["cmap"] == pytest.approx(np.mean(M.average_precision(y, s)[:5]))
    assert r["n_noise_rows"] == 0 and r["n_rows"] == 150  # every row now has c4
    assert r["per_class"][5]["ap"] is None and r["per_class"][0]["ap_ci_low"] is not None


def test_degenerate_inputs():
    y = np.zeros((4, 2))
    s = np.full((4, 2), 0.3)
    r = M.multilabel_metrics(y, s, ["a", "b"])
    json.dumps(r, allow_nan=False)
    assert r["cmap"] is None and r["map"] is None and r["roc_auc_macro"] is None and r["f1_micro"] is None
    assert r["det"]["eer"] is None and r["confusion"]["matrix"][2][2] == 4
    with pytest.raises(DataError, match="0 or 1"):
        M.check_inputs([[2, 0]], [[0.1, 0.2]])
    with pytest.raises(DataError, match="NaN"):
        M.check_inputs([[1, 0]], [[np.nan, 0.2]])
    with pytest.raises(DataError, match="must both be"):
        M.check_inputs([[1, 0]], [[0.1, 0.2, 0.3]])


def test_bootstrap_without_ties_matches_explicit_resamples():
    rng = np.random.default_rng(11)
    y = (rng.random((120, 3)) < 0.2).astype(int)
    s = rng.random((120, 3))  # continuous: no ties (the fast path)
    got = M.bootstrap_ap_ci(y, s, n_boot=60, seed=5, ci=0.9)
    r = np.random.default_rng(5)
    aps = np.array([[skm.average_precision_score(y[i, c], s[i, c]) for c in range(3)]
                    for i in (r.integers(0, 120, 120) for _ in range(60))])
    np.testing.assert_allclose(got["ci_low"], np.percentile(aps, 5, axis=0), atol=1e-12)
    np.testing.assert_allclose(got["ci_high"], np.percentile(aps, 95, axis=0), atol=1e-12)


def test_roc_auc_macro_is_sklearn_mean_over_defined_classes():
    from sklearn.metrics import roc_auc_score

    from edgeport.evaluation.metrics import roc_auc_macro

    rng = np.random.default_rng(3)
    y = rng.uniform(size=(200, 5))  # blended (mixup) labels: above 0.5 is a positive
    y[:, 3] = 0.0  # no positives: left out
    s = np.round(rng.uniform(size=(200, 5)), 1)  # ties count one half, as in scikit-learn
    want = np.mean([roc_auc_score(y[:, c] > 0.5, s[:, c]) for c in (0, 1, 2, 4)])
    assert roc_auc_macro(y, s) == pytest.approx(want, abs=1e-12)
    assert np.isnan(roc_auc_macro(np.zeros((4, 2)), s[:4, :2]))
    assert np.isnan(roc_auc_macro(np.zeros((0, 2)), np.zeros((0, 2))))

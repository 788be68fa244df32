"""A deliberately simple baseline: logistic regression on each clip's mean log-mel spectrum.

If it is near perfect, the data is too easy to prove anything about the DS-CNN.
"""

from __future__ import annotations

import numpy as np


def mean_spectrum_features(files: list[str], *, sample_rate: int = 16000, num_mels: int = 64,
                           fft_length: int = 512, max_duration: float = 60.0) -> np.ndarray:
    from edgeport.audio import spectrogram as sp
    from edgeport.audio.io import load

    fb = sp.mel_filterbank(sample_rate, fft_length, num_mels)
    feats = []
    for f in files:
        x = load(f, sample_rate, max_duration=max_duration)
        n_frames = max(1, x.size // (fft_length // 2))
        m = fb @ sp.stft_magnitude(x, fft_length, fft_length // 2, n_frames)
        feats.append(np.log(np.mean(m ** 2, axis=1) + 1e-8))
    return np.stack(feats).astype(np.float32)


def mean_spectrum_baseline(train_files, train_labels, test_files, test_labels, *, seed: int = 0,
                           **feature_kw) -> float:
    """Macro ROC-AUC of one-vs-rest logistic regression on mean log-mel spectra (test set)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from edgeport.evaluation.metrics import roc_auc_macro

    xtr = mean_spectrum_features(train_files, **feature_kw)
    xte = mean_spectrum_features(test_files, **feature_kw)
    scaler = StandardScaler().fit(xtr)
    xtr, xte = scaler.transform(xtr), scaler.transform(xte)
    ytr, yte = np.asarray(train_labels), np.asarray(test_labels)
    probs = np.zeros(yte.shape, np.float32)
    for c in range(ytr.shape[1]):
        if 0 < ytr[:, c].sum() < len(ytr):
            clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(xtr, ytr[:, c] > 0.5)
            probs[:, c] = clf.predict_proba(xte)[:, 1]
    return roc_auc_macro(yte, probs)

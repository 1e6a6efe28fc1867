"""AUC and logloss against scikit-learn, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from hugectr2onnx.metrics import auc, evaluate, logloss

skm = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1, 2, 3])
def test_auc_matches_sklearn_with_ties(seed, decimals):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5000))
    y = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.float32)
    y[:2] = [0, 1]
    s = rng.random(n).astype(np.float32)
    if decimals is not None:  # many equal scores
        s = np.round(s, decimals)
    assert auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    p = np.clip(s, 0, 1).astype(np.float64)
    assert logloss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-12)


def test_auc_by_hand():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4) (0.8>0.1) (0.4=0.4 half) (0.4>0.1)
    assert auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert auc([1, 1], [0.1, 0.2]) is None
    assert auc([1, 0], [0.1, float("nan")]) is None


def test_logloss_clips_certain_mistakes():
    assert np.isfinite(logloss([1, 0], [0.0, 1.0]))
    assert logloss([1, 0], [0.0, 1.0]) == pytest.approx(skm.log_loss([1, 0], [0.0, 1.0]))


def test_evaluate_pairs_softmax_with_class_label():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]], np.float32)
    labels = np.array([[0], [1], [0]], np.float32)
    m = evaluate({"label": probs}, {"label": labels})["label"]
    assert m["auc"] == pytest.approx(skm.roc_auc_score(labels.ravel(), probs[:, 1]))
    assert m["samples"] == 3

"""Evaluation metrics over whole datasets, vectorised: exact AUC and logloss.

AUC is the area under the ROC curve with tied scores handled as scikit-learn's
``roc_auc_score`` does (one ROC point per distinct score, trapezoids between them), which
equals the Mann-Whitney statistic with tied ranks averaged. Labels above 0.5 are positive.
"""

from __future__ import annotations

import math

import numpy as np


def auc(labels, scores) -> float | None:
    """Exact ROC AUC; None when only one class is present or a score is NaN (sklearn
    raises on both)."""
    y = np.asarray(labels).reshape(-1) > 0.5
    s = np.asarray(scores, np.float64).reshape(-1)
    pos = int(y.sum())
    neg = y.size - pos
    if pos == 0 or neg == 0 or np.isnan(s).any():
        return None
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    # one group per distinct score; the group's average rank goes to each of its members
    first = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    sizes = np.diff(np.append(first, s.size))
    mid = first + (sizes + 1) / 2.0  # average 1-based rank of each group
    pos_per_group = np.add.reduceat(y.astype(np.int64), first)
    rank_sum = float(np.dot(pos_per_group, mid))
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def logloss(labels, probs) -> float:
    """Mean binary cross-entropy; probabilities clipped to [eps, 1 - eps] in float64
    (eps = float64's machine epsilon, as sklearn's ``log_loss`` does for float64 input)."""
    y = np.asarray(labels, np.float64).reshape(-1)
    p = np.asarray(probs, np.float64).reshape(-1)
    if y.size == 0:
        return math.nan
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def score_columns(output: np.ndarray, label: np.ndarray):
    """(labels, scores) to evaluate an output against its label, or None when they do not
    pair up: same width (BCE, MultiCrossEntropy: element by element), or a 2-way softmax
    against a one-column class label (CrossEntropy: the positive class's probability)."""
    if output.shape[1] == label.shape[1]:
        return label, output
    if output.shape[1] == 2 and label.shape[1] == 1:
        return label, output[:, 1:]
    return None


def evaluate(outputs: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None) -> dict:
    """Per output named after a label: samples, AUC and logloss."""
    out = {}
    for name, pred in outputs.items():
        if labels is None or name not in labels:
            continue
        pair = score_columns(pred, labels[name])
        if pair is None:
            continue
        y, s = pair
        out[name] = {"samples": int(pred.shape[0]), "auc": auc(y, s), "logloss": logloss(y, s)}
    return out

"""Loss layers: their inference transforms are the model's predictions (LAYERS §4).

The prediction is named after the label tensor (second bottom), as NVIDIA's converter does.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require


def bce_terms(ops, x, y):
    """Element-wise binary cross-entropy of logits, stable for large |x|."""
    return ops.add(ops.sub(ops.maximum(x, 0.0), ops.mul(x, y)),
                   ops.log1p(ops.exp(ops.neg(ops.abs(x)))))


def sum_all(ops, tensors):
    """The sum of every entry of every tensor."""
    total = None
    for t in tensors:
        part = ops.sum(ops.reshape(t, [-1]), 0)
        total = part if total is None else ops.add(total, part)
    return total


class _Loss(LayerHandler):
    bottoms = (2, 2)
    is_loss = True

    def parse(self, p, layer):
        params = {}
        if p.has("regularizer"):
            params["regularizer"] = p.str("regularizer", choices=("L1", "L2"))
            params["lambda"] = p.float("lambda", 0.0)
        return params

    def regularization(self, layer, ops, weights: list, batch: int):
        """HugeCTR's ``rterm`` added to this loss in training (regularizers/*.cu) over every
        dense-file tensor of the network: L2 ``lambda/(2B)·Σw²``, L1 ``lambda/B·Σ|w|``;
        None without a regularizer."""
        kind, lam = layer.params.get("regularizer"), layer.params.get("lambda", 0.0)
        if kind is None or not weights:
            return None
        if kind == "L2":
            total = sum_all(ops, [ops.mul(w, w) for w in weights])
            return ops.mul(total, lam / (2.0 * batch))
        return ops.mul(sum_all(ops, [ops.abs(w) for w in weights]), lam / batch)

    def infer(self, layer):
        pred, label = layer.in_shapes
        require(len(pred) == 2, "prediction must be 2-D [batch, n]")
        return [pred]


class BinaryCrossEntropyLoss(_Loss):
    """Prediction: sigmoid of the logit."""

    types = ("BinaryCrossEntropyLoss",)

    def infer(self, layer):
        out = super().infer(layer)
        require(int(layer.in_shapes[0][1]) == 1, "prediction width must be 1")
        return out

    def reference(self, layer, xs):
        return [(1.0 / (1.0 + np.exp(-xs[0].astype(np.float64)))).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Sigmoid", [layer.bottoms[0]], layer.bottoms[1])

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.sigmoid(xs[0])]

    def loss(self, layer, ops, logits, label):
        # HugeCTR's two branches in one: max(x, 0) - x*y + log(1 + exp(-|x|)), batch mean
        y = ops.reshape(label, ops.shape(logits))
        return ops.mean(bce_terms(ops, logits, y), (0, 1))


class CrossEntropyLoss(_Loss):
    """Prediction: 2-way softmax of the two logits (HugeCTR supports exactly two)."""

    types = ("CrossEntropyLoss",)

    def infer(self, layer):
        out = super().infer(layer)
        require(int(layer.in_shapes[0][1]) == 2,
                f"prediction width must be 2, found {layer.in_shapes[0][1]}")
        return out

    def reference(self, layer, xs):
        e = np.exp(xs[0].astype(np.float64))  # HugeCTR exponentiates in double, no max shift
        return [(e / e.sum(axis=1, keepdims=True)).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Softmax", [layer.bottoms[0]], layer.bottoms[1], axis=-1)

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.softmax(xs[0], -1)]

    def loss(self, layer, ops, logits, label):
        # HugeCTR's kernel reads one label per sample: class 0 below 0.5, else class 1
        top = ops.max(logits, -1, keepdims=True)
        log_total = ops.add(top, ops.log(ops.sum(ops.exp(ops.sub(logits, top)), -1, keepdims=True)))
        log_p = ops.sub(logits, log_total)
        y = ops.slice(label, 1, 0, 1)  # label [B, label_dim]
        picked = ops.where(ops.greater_equal(y, 0.5),
                           ops.slice(log_p, 1, 1, 2), ops.slice(log_p, 1, 0, 1))
        return ops.neg(ops.mean(picked, (0, 1)))


class MultiCrossEntropyLoss(_Loss):
    """Prediction: element-wise sigmoid; ``target_weight`` only weighs the training loss."""

    types = ("MultiCrossEntropyLoss",)

    def parse(self, p, layer):
        params = super().parse(p, layer)
        if p.has("target_weight"):
            params["target_weight"] = p.float_list("target_weight")
        return params

    def infer(self, layer):
        out = super().infer(layer)
        pred, label = layer.in_shapes
        require(tuple(label) == tuple(pred),
                f"label {fmt_shape(label)} and prediction {fmt_shape(pred)} must match")
        weights = layer.params.get("target_weight")
        require(weights is None or len(weights) == int(pred[1]),
                f"{len(weights or [])} target weights for {pred[1]} outputs", "target_weight")
        return out

    def reference(self, layer, xs):
        return [(1.0 / (1.0 + np.exp(-xs[0].astype(np.float64)))).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Sigmoid", [layer.bottoms[0]], layer.bottoms[1])

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.sigmoid(xs[0])]

    def loss(self, layer, ops, logits, label):
        # sum of target_weight-weighted BCEs over labels >= -0.5, divided by all B·L entries
        y = ops.reshape(label, ops.shape(logits))
        terms = bce_terms(ops, logits, y)
        weights = layer.params.get("target_weight")
        if weights is not None:
            terms = ops.mul(terms, ops.const(np.asarray(weights), like=logits))
        kept = ops.greater_equal(y, -0.5)
        return ops.mean(ops.where(kept, terms, ops.const(0.0, like=terms)), (0, 1))


HANDLERS = [BinaryCrossEntropyLoss(), CrossEntropyLoss(), MultiCrossEntropyLoss()]

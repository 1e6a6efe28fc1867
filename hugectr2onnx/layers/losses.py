"""Loss layers: their inference transforms are the model's predictions (LAYERS §4).

The prediction is named after the label tensor (second bottom), as NVIDIA's converter does.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require
from .functions import sigmoid


class _Loss(LayerHandler):
    bottoms = (2, 2)
    is_loss = True

    def parse(self, p, layer):
        params = {}
        if p.has("regularizer"):
            params["regularizer"] = p.str("regularizer", choices=("L1", "L2"))
        return params

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
        return [sigmoid(xs[0]).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Sigmoid", [layer.bottoms[0]], layer.bottoms[1])


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
        return [sigmoid(xs[0]).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Sigmoid", [layer.bottoms[0]], layer.bottoms[1])


HANDLERS = [BinaryCrossEntropyLoss(), CrossEntropyLoss(), MultiCrossEntropyLoss()]

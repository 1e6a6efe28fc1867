"""Loss layers: their inference transforms are the model's predictions (LAYERS §4).

The prediction is named after the label tensor (second bottom), as NVIDIA's converter does.
"""

from __future__ import annotations

import numpy as np

from .base import LayerHandler, require


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
        return [(1.0 / (1.0 + np.exp(-xs[0].astype(np.float64)))).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Sigmoid", [layer.bottoms[0]], layer.bottoms[1])


HANDLERS = [BinaryCrossEntropyLoss()]

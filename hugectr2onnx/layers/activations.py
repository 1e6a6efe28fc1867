"""Element-wise activations: ReLU, Sigmoid, ELU, and the identities Dropout and Cast."""

from __future__ import annotations

import numpy as np

from .base import LayerHandler
from .functions import sigmoid


class ReLU(LayerHandler):
    types = ("ReLU",)

    def reference(self, layer, xs):
        return [np.where(xs[0] > 0, xs[0], np.float32(0))]

    def to_onnx(self, layer, g):
        g.node("Relu", layer.bottoms, layer.tops[0])


class Sigmoid(LayerHandler):
    types = ("Sigmoid",)

    def reference(self, layer, xs):
        return [sigmoid(xs[0]).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Sigmoid", layer.bottoms, layer.tops[0])


class ELU(LayerHandler):
    types = ("ELU",)

    def parse(self, p, layer):
        return {"alpha": p.float("elu_param.alpha", 1.0)}

    def reference(self, layer, xs):
        x = xs[0].astype(np.float64)
        return [np.where(x >= 0, x, layer.params["alpha"] * np.expm1(x)).astype(np.float32)]

    def to_onnx(self, layer, g):
        g.node("Elu", layer.bottoms, layer.tops[0], alpha=layer.params["alpha"])


class Identity(LayerHandler):
    """Dropout is a copy at inference; Cast only changes precision (float32 here)."""

    types = ("Dropout", "Cast")

    def parse(self, p, layer):
        return {"rate": p.float("rate", 0.5)} if layer.type == "Dropout" else {}

    def reference(self, layer, xs):
        return [xs[0].copy()]

    def to_onnx(self, layer, g):
        g.identity(layer.bottoms[0], layer.tops[0])


HANDLERS = [ReLU(), Sigmoid(), ELU(), Identity()]

"""PReLU_Dice (DIN's Dice activation) on 2-D ``[B, N]``.

Statistics are those of the current batch, also at inference, so outputs depend on the
batch; the ONNX graph reduces over the batch axis the same way.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerError, LayerHandler, require
from .functions import sigmoid


class PReLUDice(LayerHandler):
    types = ("PReLU_Dice",)

    def parse(self, p, layer):
        # graph_to_json writes 'alpha'; HugeCTR's own reader wants 'elu_alpha'.
        for key in ("alpha", "elu_alpha"):
            if p.has(f"prelu_dice_param.{key}"):
                alpha = p.float(f"prelu_dice_param.{key}")
                break
        else:
            raise LayerError("missing field 'prelu_dice_param.alpha' (or 'elu_alpha')",
                             "prelu_dice_param.alpha")
        eps = p.float("prelu_dice_param.eps", 1e-5)
        require(eps >= 0, f"eps {eps} must not be negative", "prelu_dice_param.eps")
        return {"alpha": alpha, "eps": eps}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) == 2, f"input must be 2-D (HugeCTR mis-indexes others), found {fmt_shape(x)}")
        return [x]

    def reference(self, layer, xs):
        alpha, eps = layer.params["alpha"], layer.params["eps"]
        x = xs[0].astype(np.float64)
        mean = x.mean(axis=0)
        var = (x ** 2).mean(axis=0) - mean ** 2  # biased, as E[x^2] - E[x]^2
        p = sigmoid((x - mean) / np.sqrt(var + eps))
        return [(p * x + (1 - p) * alpha * x).astype(np.float32)]

    def to_onnx(self, layer, g):
        alpha, eps = layer.params["alpha"], layer.params["eps"]
        x, top = layer.bottoms[0], layer.tops[0]
        mean = g.reduce("ReduceMean", x, [0])
        mean_sq = g.reduce("ReduceMean", g.node("Mul", [x, x]), [0])
        var = g.node("Sub", [mean_sq, g.node("Mul", [mean, mean])])
        std = g.node("Sqrt", [g.node("Add", [var, g.const(np.float32(eps))])])
        # 1 / (1 + exp((E - x)/std)) = sigmoid((x - E)/std); p*x + (1-p)*a*x = x*(a + (1-a)*p)
        p = g.node("Sigmoid", [g.node("Div", [g.node("Sub", [x, mean]), std])])
        gate = g.node("Add", [g.node("Mul", [p, g.const(np.float32(1 - alpha))]),
                              g.const(np.float32(alpha))])
        g.node("Mul", [x, gate], top)


HANDLERS = [PReLUDice()]

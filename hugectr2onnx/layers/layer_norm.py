"""LayerNorm over the last dimension with the biased variance (LAYERS LayerNorm)."""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerHandler, require

MAX_H = 65535  # HugeCTR's kernel limit on the normalized width


class LayerNorm(LayerHandler):
    types = ("LayerNorm",)

    def parse(self, p, layer):
        eps = p.float("ln_param.eps", 1e-5)
        require(eps >= 0, f"eps must not be negative, found {eps}", "ln_param.eps")
        return {"eps": eps}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(2 <= len(x) <= 4, f"input must be 2-D to 4-D, found {fmt_shape(x)}")
        require(1 <= int(x[-1]) <= MAX_H, f"last dimension must be 1..{MAX_H}, found {x[-1]}")
        return [x]

    def weight_specs(self, layer):
        h = int(layer.in_shapes[0][-1])
        return [WeightSpec("gamma", (h,)), WeightSpec("beta", (h,))]

    def reference(self, layer, xs):
        x = xs[0].astype(np.float64)
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        gamma = layer.weights["gamma"].reshape(-1).astype(np.float64)
        beta = layer.weights["beta"].reshape(-1).astype(np.float64)
        return [((x - mu) / np.sqrt(var + layer.params["eps"]) * gamma + beta).astype(np.float32)]

    def to_onnx(self, layer, g):
        x, out, eps = layer.bottoms[0], layer.tops[0], layer.params["eps"]
        gamma = g.weight(layer, "gamma", layer.weights["gamma"].reshape(-1))
        beta = g.weight(layer, "beta", layer.weights["beta"].reshape(-1))
        if g.opset >= 17:
            g.node("LayerNormalization", [x, gamma, beta], out, axis=-1, epsilon=eps)
            return
        # LayerNormalization is opset 17+; the same math in primitive ops.
        mu = g.reduce("ReduceMean", x, [-1])
        d = g.node("Sub", [x, mu], hint=f"{out}/centered")
        var = g.reduce("ReduceMean", g.node("Mul", [d, d], hint=f"{out}/sq"), [-1])
        var_eps = g.node("Add", [var, g.const(np.float32(eps))], hint=f"{out}/var_eps")
        std = g.node("Sqrt", [var_eps], hint=f"{out}/std")
        normed = g.node("Div", [d, std], hint=f"{out}/normed")
        g.node("Add", [g.node("Mul", [normed, gamma], hint=f"{out}/scaled"), beta], out)

    def forward(self, layer, ops, xs, params, *, training=False):
        x = xs[0]
        centered = ops.sub(x, ops.mean(x, -1, keepdims=True))
        var = ops.mean(ops.mul(centered, centered), -1, keepdims=True)
        normed = ops.div(centered, ops.sqrt(ops.add(var, layer.params["eps"])))
        return [ops.add(ops.mul(normed, params["gamma"]), params["beta"])]


HANDLERS = [LayerNorm()]

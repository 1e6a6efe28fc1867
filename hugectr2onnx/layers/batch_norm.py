"""BatchNorm at inference: per-feature affine with the running statistics (LAYERS BatchNorm).

gamma/beta come from the dense file; mean/var from the ntp JSON (first C values, FORMATS §4).
"""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerHandler, require


class BatchNorm(LayerHandler):
    types = ("BatchNorm",)

    def parse(self, p, layer):
        eps = p.float("bn_param.eps", 1e-5)
        require(eps >= 0, f"eps must not be negative, found {eps}", "bn_param.eps")
        return {"eps": eps, "factor": p.float("bn_param.factor", 1.0)}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) == 2, f"input must be 2-D [batch, C], found {fmt_shape(x)}")
        return [x]

    def _channels(self, layer) -> int:
        return int(layer.in_shapes[0][-1])

    def weight_specs(self, layer):
        c = self._channels(layer)
        return [WeightSpec("gamma", (c,)), WeightSpec("beta", (c,))]

    def ntp_specs(self, layer):
        c = self._channels(layer)
        return [WeightSpec("mean", (c,)), WeightSpec("var", (c,))]

    def reference(self, layer, xs):
        w = {k: layer.weights[k].astype(np.float64).reshape(-1)
             for k in ("gamma", "beta", "mean", "var")}
        x = xs[0].astype(np.float64)
        y = w["gamma"] * (x - w["mean"]) / np.sqrt(w["var"] + layer.params["eps"]) + w["beta"]
        return [y.astype(np.float32)]

    def to_onnx(self, layer, g):
        ins = [layer.bottoms[0]] + [g.weight(layer, k, layer.weights[k].reshape(-1))
                                    for k in ("gamma", "beta", "mean", "var")]
        g.node("BatchNormalization", ins, layer.tops[0], epsilon=layer.params["eps"])

    def forward(self, layer, ops, xs, params, *, training=False):
        x, eps = xs[0], layer.params["eps"]
        if not training:
            mean, var = params["mean"], params["var"]
            centered = ops.sub(x, mean)
        else:
            # cuDNN training: normalise with the batch's biased variance; the running
            # statistics take factor x (batch mean, unbiased batch variance)
            mean = ops.mean(x, 0)
            centered = ops.sub(x, mean)
            var = ops.mean(ops.mul(centered, centered), 0)
            n, f = ops.shape(x)[0], layer.params["factor"]
            # n/(n - 1) without a branch on n: a scalar tensor where TF traces an unknown batch
            count = ops.add(ops.zeros_like(var), n)
            unbiased = ops.div(ops.mul(var, count), ops.maximum(ops.sub(count, 1.0), 1.0))
            ops.assign(params["mean"], ops.add(ops.mul(params["mean"], 1.0 - f), ops.mul(mean, f)))
            ops.assign(params["var"], ops.add(ops.mul(params["var"], 1.0 - f), ops.mul(unbiased, f)))
        normed = ops.div(centered, ops.sqrt(ops.add(var, eps)))
        return [ops.add(ops.mul(normed, params["gamma"]), params["beta"])]


HANDLERS = [BatchNorm()]

"""WeightMultiply: each of the S input scalars scales its own learned V-vector.

``y[b, s*V + v] = x[b, s] * W[s, v]``; W ``[S, V]`` is ``weight_dims`` in the dense file.
"""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerError, LayerHandler, require


class WeightMultiply(LayerHandler):
    types = ("WeightMultiply",)

    def parse(self, p, layer):
        dims = p.int_list("weight_dims", lo=1)
        if len(dims) != 2:
            raise LayerError(f"field 'weight_dims' must be [S, V], found {dims}", "weight_dims")
        return {"weight_dims": dims}

    def infer(self, layer):
        x = layer.in_shapes[0]
        s, v = layer.params["weight_dims"]
        require(len(x) == 2, f"input must be 2-D, found {fmt_shape(x)}")
        require(int(x[1]) == s, f"weight_dims[0] = {s} must equal the input width {x[1]}",
                "weight_dims")
        return [(x[0], s * v)]

    def weight_specs(self, layer):
        return [WeightSpec("W", tuple(layer.params["weight_dims"]))]

    def reference(self, layer, xs):
        x, w = xs[0], layer.weights["W"]
        return [(x[:, :, None] * w[None, :, :]).reshape(x.shape[0], -1).astype(np.float32)]

    def to_onnx(self, layer, g):
        s, v = layer.params["weight_dims"]
        scaled = g.node("Mul", [g.unsqueeze(layer.bottoms[0], [2]), g.weight(layer, "W")])
        g.reshape(scaled, [-1, s * v], out=layer.tops[0])

    def forward(self, layer, ops, xs, params, *, training=False):
        s, v = layer.params["weight_dims"]
        return [ops.reshape(ops.mul(ops.expand_dims(xs[0], 2), params["W"]), [-1, s * v])]


HANDLERS = [WeightMultiply()]

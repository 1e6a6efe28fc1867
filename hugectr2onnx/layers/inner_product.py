"""InnerProduct: ``y = x·W + b`` over the last axis of a 2-D or 3-D input."""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec
from .base import LayerHandler, require


class InnerProduct(LayerHandler):
    types = ("InnerProduct",)

    def parse(self, p, layer):
        return {"num_output": p.int("fc_param.num_output", lo=1)}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) in (2, 3), "input must be 2-D or 3-D")
        return [tuple(x[:-1]) + (layer.params["num_output"],)]

    def weight_specs(self, layer):
        n_in, n_out = int(layer.in_shapes[0][-1]), layer.params["num_output"]
        return [WeightSpec("W", (n_in, n_out)), WeightSpec("b", (1, n_out))]

    def reference(self, layer, xs):
        return [(xs[0] @ layer.weights["W"] + layer.weights["b"][0]).astype(np.float32)]

    def to_onnx(self, layer, g):
        w = g.weight(layer, "W")
        b = g.weight(layer, "b", layer.weights["b"].reshape(-1))
        g.matmul_bias(layer.bottoms[0], w, b, len(layer.in_shapes[0]), out=layer.tops[0])

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.linear(xs[0], params["W"], ops.reshape(params["b"], [-1]))]


HANDLERS = [InnerProduct()]

"""FmOrder2: factorization-machine second-order term of ``[B, S*V]`` viewed as S vectors."""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require


class FmOrder2(LayerHandler):
    types = ("FmOrder2",)

    def parse(self, p, layer):
        return {"out_dim": p.int("out_dim", lo=1)}

    def infer(self, layer):
        x, v = layer.in_shapes[0], layer.params["out_dim"]
        require(len(x) == 2, f"input must be 2-D, found {fmt_shape(x)}")
        require(int(x[1]) % v == 0, f"input width {x[1]} is not a multiple of out_dim {v}",
                "out_dim")
        return [(x[0], v)]

    def reference(self, layer, xs):
        v = layer.params["out_dim"]
        x = xs[0].astype(np.float64).reshape(xs[0].shape[0], -1, v)
        # y[b, v] = 0.5 * ((sum_s x[b,s,v])^2 - sum_s x[b,s,v]^2)
        return [(0.5 * (x.sum(axis=1) ** 2 - (x ** 2).sum(axis=1))).astype(np.float32)]

    def to_onnx(self, layer, g):
        v = layer.params["out_dim"]
        s = int(layer.in_shapes[0][1]) // v
        x3 = g.reshape(layer.bottoms[0], [-1, s, v])
        total = g.reduce("ReduceSum", x3, [1], keepdims=False)
        squares = g.reduce("ReduceSum", g.node("Mul", [x3, x3]), [1], keepdims=False)
        diff = g.node("Sub", [g.node("Mul", [total, total]), squares])
        g.node("Mul", [diff, g.const(np.float32(0.5))], layer.tops[0])

    def forward(self, layer, ops, xs, params, *, training=False):
        v = layer.params["out_dim"]
        x3 = ops.reshape(xs[0], [-1, int(layer.in_shapes[0][1]) // v, v])
        total = ops.sum(x3, 1)
        squares = ops.sum(ops.mul(x3, x3), 1)
        return [ops.mul(ops.sub(ops.mul(total, total), squares), 0.5)]


HANDLERS = [FmOrder2()]

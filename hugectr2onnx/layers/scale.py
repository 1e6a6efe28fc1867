"""Scale: repeat each element (axis 0) or each row (axis 1) ``factor`` times, 2-D only."""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require


class Scale(LayerHandler):
    types = ("Scale",)

    def parse(self, p, layer):
        axis = p.int("scale_param.axis", hi=1)
        factor = p.float("scale_param.factor")
        # Written as a float; ScaleLayer takes an int, so C++ truncates toward zero.
        repeat = int(factor)
        require(repeat >= 1, f"factor {factor} must be at least 1", "scale_param.factor")
        return {"axis": axis, "factor": repeat}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) == 2, f"input must be 2-D, found {fmt_shape(x)}")
        f = layer.params["factor"]
        if layer.params["axis"] == 0:
            return [(x[0], int(x[1]) * f)]
        return [(x[0] * f, int(x[1]))]

    def reference(self, layer, xs):
        # axis 0: y[b, j*f + i] = x[b, j]; axis 1: y[b*f + i, :] = x[b, :]
        return [np.repeat(xs[0], layer.params["factor"], axis=1 - layer.params["axis"])]

    def to_onnx(self, layer, g):
        f, n = layer.params["factor"], int(layer.in_shapes[0][1])
        x, top = layer.bottoms[0], layer.tops[0]
        if layer.params["axis"] == 0:
            x3 = g.unsqueeze(x, [2])  # [B, N, 1] -> [B, N, f] -> [B, N*f]
            tiled = g.node("Tile", [x3, g.ints([1, 1, f])], hint=f"{top}/tile")
            g.reshape(tiled, [-1, n * f], out=top)
        else:
            x3 = g.unsqueeze(x, [1])  # [B, 1, N] -> [B, f, N] -> [B*f, N]
            tiled = g.node("Tile", [x3, g.ints([1, f, 1])], hint=f"{top}/tile")
            g.reshape(tiled, [-1, n], out=top)

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.repeat(xs[0], layer.params["factor"], 1 - layer.params["axis"])]


HANDLERS = [Scale()]

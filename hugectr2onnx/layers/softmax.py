"""Softmax over the last axis; with a second input, HugeCTR's masked attention softmax.

One input: ``exp(x) / sum_last exp(x)`` (HugeCTR subtracts no maximum, so logits above ~88
overflow there; ONNX Softmax is the same function without that overflow).
Two inputs ``x [B, H, Lf, Lt]``, ``mask [B, 1, Lf, Lt]`` (or ``[B, 1, 1, Lt]`` up to
v23.06): ``z = factor*x - 10000*(1 - mask)``,
``y = exp(z - max z) / (sum exp(z - max z) + 1e-6)``, all along the last axis.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require
from .functions import emit_masked_softmax, masked_softmax


class Softmax(LayerHandler):
    types = ("Softmax",)
    bottoms = (1, 2)

    def parse(self, p, layer):
        return {"factor": p.float("factor", 1.0)}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) >= 2, f"input must be at least 2-D, found {fmt_shape(x)}")
        if len(layer.in_shapes) == 2:
            m = layer.in_shapes[1]
            require(len(x) == 4 and len(m) == 4 and m[0] == x[0] and int(m[1]) == 1
                    and int(m[2]) in (1, int(x[2])) and m[3] == x[3],
                    f"masked softmax needs x [B, H, Lf, Lt] and mask [B, 1, Lf, Lt] or "
                    f"[B, 1, 1, Lt], found {fmt_shape(x)} and {fmt_shape(m)}")
        return [x]

    def reference(self, layer, xs):
        if len(xs) == 1:
            e = np.exp(xs[0].astype(np.float32))
            return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]
        return [masked_softmax(xs[0], xs[1], layer.params["factor"]).astype(np.float32)]

    def to_onnx(self, layer, g):
        top = layer.tops[0]
        if len(layer.bottoms) == 1:
            g.node("Softmax", layer.bottoms, top, axis=-1)
            return
        x, mask = layer.bottoms
        emit_masked_softmax(g, x, mask, factor=layer.params["factor"], out=top, hint=top)


HANDLERS = [Softmax()]

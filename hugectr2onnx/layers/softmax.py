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

MASK_PENALTY = 10000.0
DENOMINATOR_EPS = 1e-6


def masked_softmax(x: np.ndarray, mask: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """HugeCTR's ``mask_softmax_fprop_kernel`` (masked_softmax_layer.cu), which the fused
    MultiHeadAttention also runs on its float32 scores: the logits
    ``z = x*factor - (1 - mask)*10000`` are formed in float32, and near -10000 float32 is
    ~1e-3 apart, which shows in fully masked rows; exp and sums here are float64."""
    f32 = np.float32
    penalty = (f32(1) - np.asarray(mask, f32)) * f32(MASK_PENALTY)
    z = (np.asarray(x, f32) * f32(factor) - penalty).astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / (e.sum(axis=-1, keepdims=True) + DENOMINATOR_EPS)


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
        scaled = g.node("Mul", [x, g.const(np.float32(layer.params["factor"]))])
        penalty = g.node("Mul", [g.node("Sub", [g.const(np.float32(1.0)), mask]),
                                 g.const(np.float32(MASK_PENALTY))])
        z = g.node("Sub", [scaled, penalty], hint=f"{top}/logits")
        e = g.node("Exp", [g.node("Sub", [z, g.reduce("ReduceMax", z, [-1])])])
        total = g.node("Add", [g.reduce("ReduceSum", e, [-1]), g.const(np.float32(DENOMINATOR_EPS))])
        g.node("Div", [e, total], top)


HANDLERS = [Softmax()]

"""FusedReshapeConcat and FusedReshapeConcatGeneral: concatenate 3-D inputs ``[B, S, W_i]``
on the last axis, then flatten slots into rows.

FusedReshapeConcat (DIN) splits off the last slot: ``item = [B*(S-1), W]`` holds slots
``0..S-2`` of every sample, ``ad = [B, W]`` the last slot. The General form keeps all
slots: ``[B*S, W]``.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require


def _check(layer) -> tuple:
    """(batch dim, slots S, total width W) of the 3-D inputs."""
    shapes = layer.in_shapes
    for s in shapes:
        require(len(s) == 3, f"inputs must be 3-D, found {fmt_shape(s)}")
        require(s[0] == shapes[0][0] and s[1] == shapes[0][1],
                f"inputs must agree in batch and slots: {', '.join(map(fmt_shape, shapes))}")
    return shapes[0][0], int(shapes[0][1]), sum(int(s[2]) for s in shapes)


def _concat(layer, g) -> str:
    if len(layer.bottoms) == 1:
        return layer.bottoms[0]
    return g.node("Concat", layer.bottoms, axis=2, hint=f"{layer.tops[0]}/concat")


def _concat_forward(ops, xs):
    return xs[0] if len(xs) == 1 else ops.concat(xs, 2)


class FusedReshapeConcat(LayerHandler):
    types = ("FusedReshapeConcat",)
    bottoms = (1, 1 << 16)
    tops = (2, 2)

    def infer(self, layer):
        b, s, w = _check(layer)
        require(s >= 2, f"needs at least 2 slots, found {s}")
        return [(b * (s - 1), w), (b, w)]

    def reference(self, layer, xs):
        z = np.concatenate(xs, axis=2)
        b, s, w = z.shape
        return [z[:, :s - 1, :].reshape(b * (s - 1), w), z[:, s - 1, :].copy()]

    def to_onnx(self, layer, g):
        _, s, w = _check(layer)
        z = _concat(layer, g)
        item, ad = layer.tops
        head = g.slice(z, [0], [s - 1], [1])
        g.reshape(head, [-1, w], out=item)
        g.node("Gather", [z, g.const(np.int64(s - 1), hint="last_slot")], ad, axis=1)

    def forward(self, layer, ops, xs, params, *, training=False):
        _, s, w = _check(layer)
        z = _concat_forward(ops, xs)
        return [ops.reshape(ops.slice(z, 1, 0, s - 1), [-1, w]),
                ops.reshape(ops.slice(z, 1, s - 1, s), [-1, w])]


class FusedReshapeConcatGeneral(LayerHandler):
    types = ("FusedReshapeConcatGeneral",)
    bottoms = (1, 1 << 16)

    def infer(self, layer):
        b, s, w = _check(layer)
        return [(b * s, w)]

    def reference(self, layer, xs):
        z = np.concatenate(xs, axis=2)
        return [z.reshape(-1, z.shape[2])]

    def to_onnx(self, layer, g):
        _, _, w = _check(layer)
        g.reshape(_concat(layer, g), [-1, w], out=layer.tops[0])

    def forward(self, layer, ops, xs, params, *, training=False):
        _, _, w = _check(layer)
        return [ops.reshape(_concat_forward(ops, xs), [-1, w])]


HANDLERS = [FusedReshapeConcat(), FusedReshapeConcatGeneral()]

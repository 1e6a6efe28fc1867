"""Concat of 2-D inputs on the feature axis, or of 3-D inputs on axis 1 or 2."""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerError, LayerHandler, require


class Concat(LayerHandler):
    types = ("Concat",)
    bottoms = (1, 1 << 16)

    def parse(self, p, layer):
        return {"axis": p.int("axis", 1, lo=0, hi=3)}  # v3.4/v3.5 JSONs omit it: 1

    def _axis(self, layer) -> int:
        rank = len(layer.in_shapes[0])
        return 1 if rank == 2 else layer.params["axis"]

    def infer(self, layer):
        shapes = layer.in_shapes
        rank = len(shapes[0])
        require(rank in (2, 3), f"inputs must be 2-D or 3-D, found {fmt_shape(shapes[0])}")
        axis = self._axis(layer)
        require(axis in (1, 2), "axis must be 1 or 2", "axis")
        for s in shapes:  # the message only on failure: building it per input is quadratic
            if not (len(s) == rank and all(s[d] == shapes[0][d] for d in range(rank)
                                           if d != axis)):
                raise LayerError(f"inputs disagree outside axis {axis}: "
                                 f"{', '.join(fmt_shape(x) for x in shapes)}")
        out = list(shapes[0])
        out[axis] = sum(int(s[axis]) for s in shapes)
        return [tuple(out)]

    def reference(self, layer, xs):
        return [np.concatenate(xs, axis=self._axis(layer))]

    def to_onnx(self, layer, g):
        g.node("Concat", layer.bottoms, layer.tops[0], axis=self._axis(layer))

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.concat(xs, self._axis(layer))]


HANDLERS = [Concat()]

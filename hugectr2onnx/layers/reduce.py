"""ReduceSum and ReduceMean over one axis (batch counts as 0), keeping the dimension."""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require


class _Reduce(LayerHandler):
    onnx_op = ""
    numpy_op = ""  # ndarray method: "sum" or "mean"

    def parse(self, p, layer):
        return {"axis": p.int("axis", hi=3)}

    def infer(self, layer):
        x, axis = layer.in_shapes[0], layer.params["axis"]
        # HugeCTR's kernels only handle ranks 1 to 3.
        require(1 <= len(x) <= 3, f"input must be 1-D to 3-D, found {fmt_shape(x)}")
        require(axis < len(x), f"axis {axis} is not below the input rank {len(x)}", "axis")
        out = list(x)
        out[axis] = 1
        return [tuple(out)]

    def to_onnx(self, layer, g):
        g.reduce(self.onnx_op, layer.bottoms[0], [layer.params["axis"]], keepdims=True,
                 out=layer.tops[0])

    def reference(self, layer, xs):
        x = xs[0].astype(np.float64)
        reduced = getattr(x, self.numpy_op)(axis=layer.params["axis"], keepdims=True)
        return [reduced.astype(np.float32)]

    def forward(self, layer, ops, xs, params, *, training=False):
        return [getattr(ops, self.numpy_op)(xs[0], layer.params["axis"], keepdims=True)]


class ReduceSum(_Reduce):
    types = ("ReduceSum",)
    onnx_op = "ReduceSum"
    numpy_op = "sum"


class ReduceMean(_Reduce):
    types = ("ReduceMean",)
    onnx_op = "ReduceMean"
    numpy_op = "mean"


HANDLERS = [ReduceSum(), ReduceMean()]

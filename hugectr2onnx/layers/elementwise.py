"""Element-wise Add (n inputs), Sub (two inputs) and ElementwiseMultiply (n inputs)."""

from __future__ import annotations

from functools import reduce

import numpy as np

from .base import LayerHandler, same_shapes


class _Elementwise(LayerHandler):
    bottoms = (2, 1 << 16)
    onnx_op = ""
    numpy_op = None
    ops_op = ""  # backends.ops method

    def infer(self, layer):
        return [same_shapes(layer)]

    def reference(self, layer, xs):
        # Left to right, as HugeCTR's kernels accumulate and the ONNX chain below does.
        return [reduce(self.numpy_op, [np.asarray(x, np.float32) for x in xs])]

    def to_onnx(self, layer, g):
        acc = layer.bottoms[0]
        last = len(layer.bottoms) - 1
        for k, x in enumerate(layer.bottoms[1:], start=1):
            acc = g.node(self.onnx_op, [acc, x], layer.tops[0] if k == last else None,
                         hint=f"{layer.tops[0]}/{self.onnx_op.lower()}")

    def forward(self, layer, ops, xs, params, *, training=False):
        op = getattr(ops, self.ops_op)
        return [reduce(op, xs)]


class Add(_Elementwise):
    types = ("Add",)
    onnx_op = "Add"
    ops_op = "add"
    numpy_op = np.add


class Sub(_Elementwise):
    types = ("Sub",)
    bottoms = (2, 2)
    onnx_op = "Sub"
    ops_op = "sub"
    numpy_op = np.subtract


class ElementwiseMultiply(_Elementwise):
    types = ("ElementwiseMultiply",)
    onnx_op = "Mul"
    ops_op = "mul"
    numpy_op = np.multiply


HANDLERS = [Add(), Sub(), ElementwiseMultiply()]

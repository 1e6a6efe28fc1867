"""MatrixMultiply: a matrix product over whole tensors, batch dimension included.

2-D x 2-D, batched 3-D x 3-D and 4-D x 4-D; 2-D [M, N] x 3-D [N, G, H'] flattens the right
operand to [N, G·H'] (ONNX MatMul would broadcast it as a batch instead).
"""

from __future__ import annotations

import numpy as np

from ..ir import Batch, fmt_shape
from .base import LayerHandler, require


def _agree(a, b) -> bool:
    """Equal dims; a symbolic batch multiple against an int cannot be decided statically."""
    if isinstance(a, Batch) != isinstance(b, Batch):
        return True
    return a == b


class MatrixMultiply(LayerHandler):
    types = ("MatrixMultiply",)
    bottoms = (2, 2)

    def infer(self, layer):
        a, b = layer.in_shapes
        shapes = f"{fmt_shape(a)} and {fmt_shape(b)}"
        if len(a) == 2 and len(b) == 3:
            require(_agree(b[0], a[1]), f"2-D x 3-D needs [M, N] x [N, G, H'], found {shapes}")
            return [(a[0], int(b[1]), int(b[2]))]
        require(len(a) == len(b) and len(a) in (2, 3, 4),
                f"inputs must both be 2-D, 3-D or 4-D (or 2-D x 3-D), found {shapes}")
        require(_agree(b[-2], a[-1]), f"inner dimensions differ: {shapes}")
        require(all(a[d] == b[d] for d in range(len(a) - 2)),
                f"leading dimensions differ: {shapes}")
        return [tuple(a[:-1]) + (b[-1],)]

    def reference(self, layer, xs):
        a, b = (x.astype(np.float64) for x in xs)
        if a.ndim == 2 and b.ndim == 3:
            return [(a @ b.reshape(b.shape[0], -1)).reshape(a.shape[0], *b.shape[1:])
                    .astype(np.float32)]
        return [np.matmul(a, b).astype(np.float32)]

    def to_onnx(self, layer, g):
        a, b = layer.bottoms
        out = layer.tops[0]
        if len(layer.in_shapes[0]) == 2 and len(layer.in_shapes[1]) == 3:
            n = int(layer.in_shapes[0][1])
            _, groups, width = layer.in_shapes[1]
            flat = g.reshape(b, [n, int(groups) * int(width)])
            prod = g.node("MatMul", [a, flat], hint=f"{out}/flat")
            g.reshape(prod, [-1, int(groups), int(width)], out=out)
            return
        g.node("MatMul", [a, b], out)

    def forward(self, layer, ops, xs, params, *, training=False):
        a, b = xs
        if len(layer.in_shapes[0]) == 2 and len(layer.in_shapes[1]) == 3:
            _, groups, width = layer.in_shapes[1]
            flat = ops.reshape(b, [int(layer.in_shapes[0][1]), int(groups) * int(width)])
            return [ops.reshape(ops.matmul(a, flat), [-1, int(groups), int(width)])]
        return [ops.matmul(a, b)]


HANDLERS = [MatrixMultiply()]

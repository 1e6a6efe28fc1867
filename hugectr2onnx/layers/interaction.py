"""DLRM dot interaction: the MLP vector, the pairwise dot products of [mlp; emb] below the
diagonal (row by row), and one zero (LAYERS Interaction).

A second top (fp16 "async wgrad") is a gradient buffer; inference never reads it.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require


def triangle_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of d(i, j) in output order: j = 1..n-1 outer, i = 0..j-1 inner."""
    j, i = np.tril_indices(n, -1)
    return i, j


class Interaction(LayerHandler):
    types = ("Interaction",)
    bottoms = (2, 2)
    tops = (1, 2)

    def infer(self, layer):
        mlp, emb = layer.in_shapes
        require(len(mlp) == 2 and len(emb) == 3,
                f"inputs must be [batch, V] and [batch, S, V], found {fmt_shape(mlp)} and "
                f"{fmt_shape(emb)}")
        require(mlp[0] == emb[0], "the inputs' batch dimensions differ")
        require(int(mlp[1]) == int(emb[2]), f"widths differ: {mlp[1]} vs {emb[2]}")
        n = int(emb[1]) + 1
        out = (mlp[0], int(mlp[1]) + n * (n - 1) // 2 + 1)
        return [out] * len(layer.tops)  # the gradient buffer has the output's shape

    def reference(self, layer, xs):
        mlp, emb = (x.astype(np.float64) for x in xs)
        v = np.concatenate([mlp[:, None, :], emb], axis=1)  # [B, n, V]
        i, j = triangle_pairs(v.shape[1])
        dots = np.einsum("bk,bk->b", v[:, i, :].reshape(-1, v.shape[2]),
                         v[:, j, :].reshape(-1, v.shape[2])).reshape(v.shape[0], -1)
        pad = np.zeros((v.shape[0], 1))
        return [np.concatenate([mlp, dots, pad], axis=1).astype(np.float32)]

    def to_onnx(self, layer, g):
        mlp, emb = layer.bottoms
        out = layer.tops[0]
        n = int(layer.in_shapes[1][1]) + 1
        stacked = g.node("Concat", [g.unsqueeze(mlp, [1]), emb], axis=1, hint=f"{out}/stacked")
        gram = g.node("MatMul", [stacked, g.node("Transpose", [stacked], perm=[0, 2, 1],
                                                 hint=f"{out}/stacked_t")], hint=f"{out}/gram")
        i, j = triangle_pairs(n)
        flat = g.reshape(gram, [-1, n * n])
        # GatherElements with the pair index expanded over the batch: ONNX Runtime's Gather
        # along axis 1 costs ~4x more here (5.6 vs 1.5 ms at batch 4096, 27 vectors)
        batch = g.node("Slice", [g.node("Shape", [flat]), g.ints([0]), g.ints([1])],
                       hint=f"{out}/batch")
        pairs = g.node("Expand", [g.const((i * n + j)[None].astype(np.int64)),
                                  g.node("Concat", [batch, g.ints([i.size])], axis=0)],
                       hint=f"{out}/pairs")
        dots = g.node("GatherElements", [flat, pairs], axis=1, hint=f"{out}/dots")
        zero = g.node("Expand", [g.const(np.zeros((1, 1), np.float32)),
                                 g.node("Concat", [batch, g.ints([1])], axis=0)],
                      hint=f"{out}/pad")
        g.node("Concat", [mlp, dots, zero], out, axis=1)  # the zero column HugeCTR pads with

    def forward(self, layer, ops, xs, params, *, training=False):
        mlp, emb = xs
        n = int(layer.in_shapes[1][1]) + 1
        v = ops.concat([ops.expand_dims(mlp, 1), emb], 1)  # [B, n, V]
        gram = ops.reshape(ops.matmul(v, ops.transpose(v, [0, 2, 1])), [-1, n * n])
        i, j = triangle_pairs(n)
        dots = ops.take(gram, (i * n + j).tolist(), 1)
        zero = ops.zeros_like(ops.slice(mlp, 1, 0, 1))
        out = ops.concat([mlp, dots, zero], 1)
        return [out] * len(layer.tops)


HANDLERS = [Interaction()]

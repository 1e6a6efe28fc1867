"""SequenceMask: float 0/1 attention masks from per-sample sequence lengths ``[B, 1]``.

v23.08+: inputs ``from``, ``to``; ``mask[b,0,i,j] = i < int(from[b]) and j < int(to[b])``,
shape ``[B, 1, Lf, Lt]``. v3.9 - v23.06: one input; ``mask[b,0,0,j] = j < int(len[b])``,
shape ``[B, 1, 1, L]``. Lengths are floats truncated toward zero (C++ float -> int).
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerError, LayerHandler, require


class SequenceMask(LayerHandler):
    types = ("SequenceMask",)
    bottoms = (1, 2)

    def parse(self, p, layer):
        if p.has("max_sequence_len_from") or p.has("max_sequence_len_to"):
            lens = [p.int("max_sequence_len_from", lo=1), p.int("max_sequence_len_to", lo=1)]
        elif p.has("max_sequence_len"):
            lens = [1, p.int("max_sequence_len", lo=1)]
        else:
            raise LayerError("missing field 'max_sequence_len_from'/'max_sequence_len_to' "
                             "(or 'max_sequence_len' before v23.08)", "max_sequence_len_from")
        form, want = (("two-input (from, to)", 2) if p.has("max_sequence_len_from")
                      else ("one-input (max_sequence_len)", 1))
        require(len(layer.bottoms) == want, f"the {form} form takes {want} bottom tensor(s), "
                f"found {len(layer.bottoms)}", "bottom")
        return {"lens": lens}

    def infer(self, layer):
        for s in layer.in_shapes:
            require(len(s) == 2 and int(s[1]) == 1, f"lengths must be [B, 1], found {fmt_shape(s)}")
        require(layer.in_shapes[-1][0] == layer.in_shapes[0][0], "from and to disagree in batch")
        return [(layer.in_shapes[0][0], 1, *layer.params["lens"])]

    def reference(self, layer, xs):
        lf, lt = layer.params["lens"]
        to = np.trunc(xs[-1].astype(np.float64))  # [B, 1]
        cols = np.arange(lt)[None, :] < to  # [B, Lt]
        if len(xs) == 1:
            return [cols[:, None, None, :].astype(np.float32)]
        rows = np.arange(lf)[None, :] < np.trunc(xs[0].astype(np.float64))
        return [(rows[:, None, :, None] & cols[:, None, None, :]).astype(np.float32)]

    def to_onnx(self, layer, g):
        lf, lt = layer.params["lens"]
        top = layer.tops[0]

        def within(lengths: str, n: int) -> str:
            # For integer j >= 0: j < trunc(len) <=> len >= j + 1 (also for negative len,
            # and NaN gives 0). Avoids a float -> int Cast.
            ends = g.const(np.arange(1, n + 1, dtype=np.float32)[None, :])
            return g.node("GreaterOrEqual", [lengths, ends])  # [B, n] bool

        cols = g.unsqueeze(within(layer.bottoms[-1], lt), [1, 2])  # [B, 1, 1, Lt]
        if len(layer.bottoms) == 1:
            g.node("Cast", [cols], top, to=1)
            return
        rows = g.unsqueeze(within(layer.bottoms[0], lf), [1, 3])  # [B, 1, Lf, 1]
        g.node("Cast", [g.node("And", [rows, cols])], top, to=1)

    def forward(self, layer, ops, xs, params, *, training=False):
        lf, lt = layer.params["lens"]

        def within(lengths, n):  # j < trunc(len) for j = 0..n-1, as [B, n] booleans
            ends = ops.const(np.arange(n, dtype=np.float64)[None, :], like=lengths)
            return ops.greater(ops.trunc(lengths), ends)

        cols = ops.reshape(within(xs[-1], lt), [-1, 1, 1, lt])
        if len(xs) == 1:
            return [ops.to_float(cols, like=xs[0])]
        rows = ops.reshape(within(xs[0], lf), [-1, 1, lf, 1])
        return [ops.to_float(ops.logical_and(rows, cols), like=xs[0])]


HANDLERS = [SequenceMask()]

"""MultiHeadAttention, no weights; one handler for all generations, told apart by the number
and ranks of bottoms/tops and the presence of ``transpose_b`` (docs/layers.md).

* fused (v23.09+): Q, K, V ``[B, L, D]`` (+ mask ``[B, 1, Lq, Lk]``) -> ``[B, Lq, D]``.
* two-stage (v4.3 - v23.08): Q, K, V -> scores ``[B, H, L, L]`` (scaled) and V split into heads
  ``[B, H, L, dh]``; then two 4-D tensors: ``transpose_b`` true -> ``A·Bᵀ/sqrt(dh)``, false ->
  ``P·V`` with heads merged to ``[B, M, H·dh]``.
* scores only (v3.7 - v4.2, no ``transpose_b`` key): 4-D ``A·Bᵀ``, or 3-D Q, K split into
  heads, ``Q·Kᵀ`` -- both unscaled.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerHandler, require
from .softmax import DENOMINATOR_EPS as MASK_EPS, MASK_PENALTY, masked_softmax


def _scale(dh: int) -> np.float32:
    """HugeCTR's ``1.0f / (float)sqrt(size_per_head)``."""
    return np.float32(1.0) / np.float32(np.sqrt(dh))


def form(layer) -> str:
    ranks = [len(s) for s in layer.in_shapes]
    n_in, n_out = len(ranks), len(layer.tops)
    if n_in >= 3 and ranks[:3] == [3, 3, 3]:
        if n_out == 2:
            require(n_in == 3, "the two-stage form takes exactly Q, K and V")
            return "split_qkv"
        return "fused"
    require(n_in == 2 and n_out == 1,
            f"expected Q, K, V (+ mask) or two 4-D tensors, found {n_in} inputs of ranks {ranks} "
            f"and {n_out} outputs")
    tb = layer.params["transpose_b"]
    if ranks == [3, 3]:
        require(tb is None, "two 3-D inputs are the v4.1/v4.2 Q·Kᵀ form, which has no "
                "'transpose_b'; since v4.3 3-D inputs are Q, K and V", "transpose_b")
        return "qk_unscaled"
    require(ranks == [4, 4], f"two inputs must both be 4-D (or both 3-D), found ranks {ranks}")
    return {None: "abt_unscaled", True: "abt", False: "context"}[tb]


class MultiHeadAttention(LayerHandler):
    types = ("MultiHeadAttention",)
    bottoms = (2, 4)
    tops = (1, 2)

    def parse(self, p, layer):
        return {"heads": p.int("num_attention_heads", 1, lo=1),
                "transpose_b": p.bool("transpose_b") if p.has("transpose_b") else None}

    def infer(self, layer):
        kind, shapes, h = form(layer), layer.in_shapes, layer.params["heads"]
        listing = ", ".join(map(fmt_shape, shapes))
        require(all(s[0] == shapes[0][0] for s in shapes), f"batch dimensions differ: {listing}")
        if kind in ("fused", "split_qkv", "qk_unscaled"):
            q, k = shapes[0], shapes[1]
            d = int(q[2])
            require(all(int(s[2]) == d for s in shapes[1:3]), f"hidden sizes differ: {listing}")
            require(d % h == 0, f"hidden size {d} is not divisible by {h} heads",
                    "num_attention_heads")
            if kind != "fused":
                require(all(s[1] == q[1] for s in shapes), f"sequence lengths differ: {listing}")
            if kind == "split_qkv":
                return [(q[0], h, q[1], q[1]), (q[0], h, q[1], d // h)]
            if kind == "qk_unscaled":
                return [(q[0], h, q[1], k[1])]
            v = shapes[2]
            require(v[1] == k[1], f"K and V lengths differ: {listing}")
            if len(shapes) == 4:
                want = (q[0], 1, q[1], k[1])
                require(tuple(shapes[3]) == want, f"mask must be {fmt_shape(want)}, found "
                        f"{fmt_shape(shapes[3])}")
            return [q]
        a, b = shapes
        require(a[1] == b[1], f"head counts differ: {listing}")
        if kind == "context":
            require(int(b[2]) == int(a[3]), f"P [B, H, M, K] needs V [B, H, K, dh]: {listing}")
            return [(a[0], int(a[2]), int(a[1]) * int(b[3]))]
        require(int(b[3]) == int(a[3]), f"A·Bᵀ needs equal last dimensions: {listing}")
        return [(a[0], int(a[1]), int(a[2]), int(b[2]))]

    # ---------------------------------------------------------------- numpy reference
    def reference(self, layer, xs):
        kind, h = form(layer), layer.params["heads"]
        xs = [x.astype(np.float64) for x in xs]

        def heads(x):  # [B, L, D] -> [B, H, L, dh], head h = columns [h·dh, (h+1)·dh)
            b, n, d = x.shape
            return x.reshape(b, n, h, d // h).transpose(0, 2, 1, 3)

        def merge(x):  # [B, H, L, dh] -> [B, L, H·dh]
            b, nh, n, dh = x.shape
            return x.transpose(0, 2, 1, 3).reshape(b, n, nh * dh)

        def qkt(q, k, scale):
            return np.matmul(q, np.swapaxes(k, -1, -2)) * float(scale)

        if kind == "context":
            return [merge(np.matmul(xs[0], xs[1])).astype(np.float32)]
        if kind in ("abt", "abt_unscaled"):
            scale = _scale(xs[0].shape[3]) if kind == "abt" else 1.0
            return [qkt(xs[0], xs[1], scale).astype(np.float32)]
        q, k = heads(xs[0]), heads(xs[1])
        if kind == "qk_unscaled":
            return [qkt(q, k, 1.0).astype(np.float32)]
        s = qkt(q, k, _scale(q.shape[3]))
        if kind == "split_qkv":
            return [s.astype(np.float32), heads(xs[2]).astype(np.float32)]
        if len(xs) == 4:  # HugeCTR runs its masked softmax layer on the float32 scores
            p = masked_softmax(s.astype(np.float32), xs[3], 1.0)
        else:
            e = np.exp(s)  # HugeCTR's plain softmax subtracts no maximum
            p = e / e.sum(axis=-1, keepdims=True)
        return [merge(np.matmul(p, heads(xs[2]))).astype(np.float32)]

    # ---------------------------------------------------------------- ONNX
    def to_onnx(self, layer, g):
        kind, h = form(layer), layer.params["heads"]
        ins, out, shapes = layer.bottoms, layer.tops[0], layer.in_shapes

        def heads(x, shape, perm, tag):  # [B, L, D] -> [B, L, H, dh] -> perm
            n, d = int(shape[1]), int(shape[2])
            split = g.reshape(x, [-1, n, h, d // h])
            return g.node("Transpose", [split], perm=perm, hint=f"{out}/{tag}")

        def merge(x, n, d, top):
            t = g.node("Transpose", [x], perm=[0, 2, 1, 3], hint=f"{out}/merged")
            return g.reshape(t, [-1, n, d], out=top)

        def scaled(x, dh, top=None):
            return g.node("Mul", [x, g.const(_scale(dh))], top or 1, hint=f"{out}/scaled")

        if kind == "context":
            pv = g.node("MatMul", ins, hint=f"{out}/pv")
            merge(pv, int(shapes[0][2]), int(shapes[0][1]) * int(shapes[1][3]), out)
            return
        if kind in ("abt", "abt_unscaled"):
            bt = g.node("Transpose", [ins[1]], perm=[0, 1, 3, 2], hint=f"{out}/bt")
            if kind == "abt_unscaled":
                g.node("MatMul", [ins[0], bt], out)
            else:
                scaled(g.node("MatMul", [ins[0], bt], hint=f"{out}/abt"), int(shapes[0][3]), out)
            return
        dh = int(shapes[0][2]) // h
        q = heads(ins[0], shapes[0], [0, 2, 1, 3], "q")
        kt = heads(ins[1], shapes[1], [0, 2, 3, 1], "kt")  # [B, H, dh, Lk]
        qk = g.node("MatMul", [q, kt], out if kind == "qk_unscaled" else 1, hint=f"{out}/qk")
        if kind == "qk_unscaled":
            return
        if kind == "split_qkv":
            scaled(qk, dh, out)
            g.node("Transpose", [g.reshape(ins[2], [-1, int(shapes[2][1]), h, dh])], layer.tops[1],
                   perm=[0, 2, 1, 3])
            return
        s = scaled(qk, dh)
        if len(ins) == 4:
            p = self._masked_softmax(g, s, ins[3], out)
        else:
            p = g.node("Softmax", [s], axis=-1, hint=f"{out}/softmax")
        v = heads(ins[2], shapes[2], [0, 2, 1, 3], "v")
        ctx = g.node("MatMul", [p, v], hint=f"{out}/context")
        merge(ctx, int(shapes[0][1]), int(shapes[0][2]), out)

    @staticmethod
    def _masked_softmax(g, s, mask, out):
        one = g.const(np.float32(1))
        keep_out = g.node("Sub", [one, mask], hint=f"{out}/mask_off")
        penalty = g.node("Mul", [keep_out, g.const(np.float32(MASK_PENALTY))],
                         hint=f"{out}/penalty")
        z = g.node("Sub", [s, penalty], hint=f"{out}/masked")
        shifted = g.node("Sub", [z, g.reduce("ReduceMax", z, [-1])], hint=f"{out}/shifted")
        e = g.node("Exp", [shifted], hint=f"{out}/exp")
        total = g.node("Add", [g.reduce("ReduceSum", e, [-1]), g.const(np.float32(MASK_EPS))],
                       hint=f"{out}/denominator")
        return g.node("Div", [e, total], hint=f"{out}/probs")


HANDLERS = [MultiHeadAttention()]

"""MultiCross (DCN cross network), v1 (vector weights) and v2 (low-rank U·V, v4.3+).

``projection_dim`` p is never written to the JSON (FORMATS §3.4): it is taken from an explicit
``mc_param.projection_dim``, from the converter's ``projection_dims``, or solved from the dense
file size by ``resolve``.
"""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerError, LayerHandler, require


class MultiCross(LayerHandler):
    types = ("MultiCross",)

    def parse(self, p, layer):
        params = {"num_layers": p.int("mc_param.num_layers", lo=1)}
        if p.has("mc_param.projection_dim"):
            params["projection_dim"] = p.int("mc_param.projection_dim", lo=0)
        return params

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) == 2, f"input must be 2-D [batch, d], found {fmt_shape(x)}")
        return [x]

    def unresolved(self, layer):
        return "projection_dim" not in layer.params

    def resolve(self, layer, n_floats):
        d, n_layers = int(layer.in_shapes[0][-1]), layer.params["num_layers"]
        per_layer, rest = divmod(n_floats, n_layers)
        if n_floats >= 0 and rest == 0 and per_layer == 2 * d:
            layer.params["projection_dim"] = 0
            return
        # v2: per layer U [d, p] + V [p, d] + b [d]
        p, rest_p = divmod(per_layer - d, 2 * d)
        if n_floats > 0 and rest == 0 and rest_p == 0 and p > 0:
            layer.params["projection_dim"] = p
            return
        raise LayerError(f"{n_floats} floats are left for {n_layers} cross layers of width {d}: "
                         f"neither DCN-v1 ({n_layers}*2*{d} = {2 * d * n_layers}) nor DCN-v2 "
                         f"({n_layers}*(2*{d}*p + {d}) for an integer p > 0)")

    def weight_specs(self, layer):
        d, p = int(layer.in_shapes[0][-1]), layer.params.get("projection_dim", 0)
        specs = []
        for i in range(layer.params["num_layers"]):
            if p:
                specs += [WeightSpec(f"U{i}", (d, p)), WeightSpec(f"V{i}", (p, d))]
            else:
                specs.append(WeightSpec(f"w{i}", (1, d)))
            specs.append(WeightSpec(f"b{i}", (1, d)))
        return specs

    def reference(self, layer, xs):
        x0 = xs[0].astype(np.float64)
        x, w = x0, {k: v.astype(np.float64) for k, v in layer.weights.items()}
        for i in range(layer.params["num_layers"]):
            if layer.params.get("projection_dim", 0):
                x = x0 * (x @ w[f"U{i}"] @ w[f"V{i}"] + w[f"b{i}"]) + x  # x0 ⊙ (x·U·V + b) + x
            else:
                s = (x * w[f"w{i}"]).sum(axis=1, keepdims=True)  # x·wᵀ, one scalar per sample
                x = x0 * s + x + w[f"b{i}"]
        return [x.astype(np.float32)]

    def to_onnx(self, layer, g):
        x0 = x = layer.bottoms[0]
        out = layer.tops[0]
        n = layer.params["num_layers"]
        for i in range(n):
            top = out if i == n - 1 else None
            b = g.weight(layer, f"b{i}", layer.weights[f"b{i}"].reshape(-1))
            if layer.params.get("projection_dim", 0):
                xu = g.node("MatMul", [x, g.weight(layer, f"U{i}")], hint=f"{out}/xu{i}")
                h = g.node("Gemm", [xu, g.weight(layer, f"V{i}"), b], hint=f"{out}/xuvb{i}")
                x = g.node("Add", [g.node("Mul", [x0, h], hint=f"{out}/cross{i}"), x], top or 1,
                           hint=f"{out}/x{i + 1}")
            else:
                wcol = g.weight(layer, f"w{i}", layer.weights[f"w{i}"].reshape(-1, 1))
                s = g.node("MatMul", [x, wcol], hint=f"{out}/s{i}")  # [B, 1]
                cross = g.node("Mul", [x0, s], hint=f"{out}/cross{i}")
                x = g.node("Add", [g.node("Add", [cross, x], hint=f"{out}/res{i}"), b], top or 1,
                           hint=f"{out}/x{i + 1}")

    def forward(self, layer, ops, xs, params, *, training=False):
        x0 = x = xs[0]
        for i in range(layer.params["num_layers"]):
            b = ops.reshape(params[f"b{i}"], [-1])
            if layer.params.get("projection_dim", 0):
                h = ops.linear(ops.matmul(x, params[f"U{i}"]), params[f"V{i}"], b)
                x = ops.add(ops.mul(x0, h), x)
            else:
                s = ops.sum(ops.mul(x, params[f"w{i}"]), 1, keepdims=True)
                x = ops.add(ops.add(ops.mul(x0, s), x), b)
        return [x]


HANDLERS = [MultiCross()]

"""MLP (v4.2+): a stack of fully connected sub-layers, each with optional bias and ReLU.

A second bottom (an Interaction layer's gradient buffer) only matters for training.
"""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerError, LayerHandler, require

ACTIVATIONS = ("Relu", "None")


class MLP(LayerHandler):
    types = ("MLP",)
    bottoms = (1, 2)

    def parse(self, p, layer):
        outs = p.int_list("mlp_param.num_outputs", lo=1, min_len=1)
        n = len(outs)
        if p.has("mlp_param.biases"):
            v = p.value("mlp_param.biases")
            if not isinstance(v, list) or not all(isinstance(x, bool) for x in v):
                raise LayerError(f"must be a list of true/false, found {v!r:.80}",
                                 "mlp_param.biases")
            biases = v
        else:
            biases = [p.bool("mlp_param.use_bias", True)] * n
        if p.has("mlp_param.activations"):
            v = p.value("mlp_param.activations")
            if not isinstance(v, list) or any(a not in ACTIVATIONS for a in v):
                raise LayerError(f"must be a list of {list(ACTIVATIONS)}, found {v!r:.80}",
                                 "mlp_param.activations")
            acts = v
        else:
            acts = [p.str("mlp_param.activation", "Relu", choices=ACTIVATIONS)] * n
        require(len(biases) == n, f"{len(biases)} biases for {n} layers", "mlp_param.biases")
        require(len(acts) == n, f"{len(acts)} activations for {n} layers", "mlp_param.activations")
        return {"num_outputs": outs, "biases": biases, "activations": acts}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) == 2, f"input must be 2-D [batch, in], found {fmt_shape(x)}")
        return [(x[0], layer.params["num_outputs"][-1])]

    def weight_specs(self, layer):
        specs, n_in = [], int(layer.in_shapes[0][-1])
        for i, n_out in enumerate(layer.params["num_outputs"]):
            # the bias is stored even when the sub-layer does not use it (FORMATS §3.2)
            specs += [WeightSpec(f"W{i}", (n_in, n_out)), WeightSpec(f"b{i}", (1, n_out))]
            n_in = n_out
        return specs

    def reference(self, layer, xs):
        h = xs[0].astype(np.float32)
        for i, (bias, act) in enumerate(zip(layer.params["biases"], layer.params["activations"])):
            h = h @ layer.weights[f"W{i}"]
            if bias:
                h = h + layer.weights[f"b{i}"][0]
            if act == "Relu":
                h = np.where(h > 0, h, np.float32(0))
        return [h.astype(np.float32)]

    def to_onnx(self, layer, g):
        h = layer.bottoms[0]
        params = layer.params
        last = len(params["num_outputs"]) - 1
        for i, (bias, act) in enumerate(zip(params["biases"], params["activations"])):
            out = layer.tops[0] if i == last and act == "None" else None
            w = g.weight(layer, f"W{i}")
            b = g.weight(layer, f"b{i}", layer.weights[f"b{i}"].reshape(-1)) if bias else None
            h = g.node("Gemm", [h, w] + ([b] if b else []), out or 1, hint=f"{layer.tops[0]}/fc{i}")
            if act == "Relu":
                h = g.node("Relu", [h], layer.tops[0] if i == last else 1,
                           hint=f"{layer.tops[0]}/relu{i}")

    def forward(self, layer, ops, xs, params, *, training=False):
        h = xs[0]
        for i, (bias, act) in enumerate(zip(layer.params["biases"], layer.params["activations"])):
            h = ops.linear(h, params[f"W{i}"], ops.reshape(params[f"b{i}"], [-1]) if bias else None)
            if act == "Relu":
                h = ops.relu(h)
        return [h]


HANDLERS = [MLP()]

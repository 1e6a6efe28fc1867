"""Reshape: the ``leading_dim``/``time_step`` reinterpretation, or the ``selected`` slot pick."""

from __future__ import annotations

import numpy as np

from ..ir import Batch, fmt_shape
from .base import LayerHandler, require


class Reshape(LayerHandler):
    types = ("Reshape",)

    def parse(self, p, layer):
        if p.has("selected"):
            return {"selected": p.int_list("selected", min_len=1)}
        lead = p.int("leading_dim", 0)
        require(lead > 0, "leading_dim is 0: this is a Reshape with a 'shape' (v23.08+), which "
                "graph_to_json does not save and cannot be recovered from it; "
                "'hugectr2onnx record train.py' writes a graph JSON that keeps it", "leading_dim")
        return {"leading_dim": lead, "time_step": p.int("time_step", 0)}

    def infer(self, layer):
        x = layer.in_shapes[0]
        if "selected" in layer.params:
            require(len(x) == 3, f"'selected' needs a 3-D input, found {fmt_shape(x)}")
            sel = layer.params["selected"]
            require(all(s < int(x[1]) for s in sel),
                    f"selected slots {sel} exceed the {x[1]} slots", "selected")
            # HugeCTR's ReshapeLayer rejects more picks than slots ("selected is invalid").
            require(len(sel) <= int(x[1]), f"{len(sel)} selected slots but the input has only "
                    f"{x[1]}", "selected")
            return [(x[0], len(sel) * int(x[2]))]
        lead, t = layer.params["leading_dim"], layer.params["time_step"]
        per_sample = 1
        for d in x[1:]:
            per_sample *= int(d)
        group = lead * (t or 1)
        first = x[0]
        if isinstance(first, Batch):
            rows = first * per_sample / group
        else:
            require(first * per_sample % group == 0, "element count is not divisible")
            rows = first * per_sample // group
        return [(rows, t, lead) if t else (rows, lead)]

    def reference(self, layer, xs):
        x = xs[0]
        if "selected" in layer.params:
            return [x[:, layer.params["selected"], :].reshape(x.shape[0], -1)]
        lead, t = layer.params["leading_dim"], layer.params["time_step"]
        return [x.reshape((-1, t, lead) if t else (-1, lead))]

    def to_onnx(self, layer, g):
        x = layer.bottoms[0]
        if "selected" in layer.params:
            picked = g.node("Gather", [x, g.ints(layer.params["selected"])], axis=1,
                            hint=f"{layer.tops[0]}/selected")
            n = len(layer.params["selected"]) * int(layer.in_shapes[0][2])
            g.reshape(picked, [-1, n], out=layer.tops[0])
            return
        lead, t = layer.params["leading_dim"], layer.params["time_step"]
        g.reshape(x, [-1, t, lead] if t else [-1, lead], out=layer.tops[0])


HANDLERS = [Reshape()]

"""Gather (HugeCTR <= v23.06): picks rows of a 2-D tensor along the batch dimension.

The output has a fixed number of rows, ``len(indices)``. (From v23.08 HugeCTR maps Gather
onto Select with dim 0, which it rejects, so such graphs cannot have been trained.)
"""

from __future__ import annotations

from ..ir import Batch, fmt_shape
from .base import LayerHandler, require


class Gather(LayerHandler):
    types = ("Gather",)

    def parse(self, p, layer):
        return {"indices": p.int_list("indices", min_len=1)}

    def infer(self, layer):
        x, idx = layer.in_shapes[0], layer.params["indices"]
        require(len(x) == 2, f"input must be 2-D, found {fmt_shape(x)}")
        if not isinstance(x[0], Batch):
            require(max(idx) < x[0], f"indices {idx} exceed the {x[0]} rows", "indices")
        # Rows beyond the batch size at run time make both numpy and onnxruntime fail.
        return [(len(idx), int(x[1]))]

    def reference(self, layer, xs):
        return [xs[0][layer.params["indices"]]]

    def to_onnx(self, layer, g):
        g.node("Gather", [layer.bottoms[0], g.ints(layer.params["indices"])], layer.tops[0],
               axis=0)

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.take(xs[0], layer.params["indices"], 0)]


HANDLERS = [Gather()]

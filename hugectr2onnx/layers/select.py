"""Select (v23.08+): picks entries ``index`` along dimension ``dim`` (never the batch).

``graph_to_json`` does not save ``dim`` and ``index``; a user can add them to the layer's
JSON block by hand from the training script.
"""

from __future__ import annotations

import numpy as np

from ..ir import fmt_shape
from .base import LayerError, LayerHandler, require

LOST = ("Select's 'dim' and 'index' are not saved by HugeCTR's graph_to_json; add them to this "
        "layer's JSON block from the training script, e.g. \"dim\": 1, \"index\": [0, 2]")


class Select(LayerHandler):
    types = ("Select",)

    def parse(self, p, layer):
        for key in ("dim", "index"):
            if not p.has(key):
                raise LayerError(LOST, key)
        return {"dim": p.int("dim", lo=1), "index": p.int_list("index", min_len=1)}

    def infer(self, layer):
        x, dim, index = layer.in_shapes[0], layer.params["dim"], layer.params["index"]
        require(dim < len(x), f"dim {dim} is not below the input rank of {fmt_shape(x)}", "dim")
        require(max(index) < int(x[dim]), f"index {index} exceeds the {x[dim]} entries of dim "
                f"{dim}", "index")
        out = list(x)
        out[dim] = len(index)
        return [tuple(out)]

    def reference(self, layer, xs):
        return [np.take(xs[0], layer.params["index"], axis=layer.params["dim"])]

    def to_onnx(self, layer, g):
        g.node("Gather", [layer.bottoms[0], g.ints(layer.params["index"])], layer.tops[0],
               axis=layer.params["dim"])

    def forward(self, layer, ops, xs, params, *, training=False):
        return [ops.take(xs[0], layer.params["index"], layer.params["dim"])]


HANDLERS = [Select()]

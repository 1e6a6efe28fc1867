"""FusedInnerProduct (<= v23.09.00): ``relu(x·W + b)``; no ReLU only for Tail + activation None.

Head/Body/Tail layers pass ReLU masks and gradient buffers along extra bottoms/tops; only
element 0 of each list carries activations at inference.
"""

from __future__ import annotations

import numpy as np

from ..ir import WeightSpec, fmt_shape
from .base import LayerHandler, require

# position -> (allowed bottom counts, allowed top counts), as HugeCTR's builder checks them
POSITIONS = {"Head": ((1, 2), (4,)), "Body": ((4,), (4,)), "Tail": ((4,), (1,)),
             "Isolated": ((1,), (1,)), "None": ((1,), (1,))}


class FusedInnerProduct(LayerHandler):
    types = ("FusedInnerProduct",)
    bottoms = (1, 4)
    tops = (1, 4)
    value_tops = 1  # the others are ReLU masks and gradient buffers

    def parse(self, p, layer):
        pos = p.str("position", "None", choices=tuple(POSITIONS))
        act = p.str("activation", "Relu", choices=("Relu", "None"))
        n_bottoms, n_tops = POSITIONS[pos]
        require(len(layer.bottoms) in n_bottoms and len(layer.tops) in n_tops,
                f"position {pos} takes {' or '.join(map(str, n_bottoms))} bottom(s) and "
                f"{n_tops[0]} top(s), found {len(layer.bottoms)} and {len(layer.tops)}", "position")
        require(act == "Relu" or pos == "Tail",
                f"activation None is only allowed at position Tail, found {pos}", "activation")
        return {"num_output": p.int("fc_param.num_output", lo=1), "position": pos,
                "relu": act == "Relu"}

    def infer(self, layer):
        x = layer.in_shapes[0]
        require(len(x) == 2, f"input must be 2-D [batch, in], found {fmt_shape(x)}")
        return [(x[0], layer.params["num_output"])]  # extra tops: same shape, never read

    def weight_specs(self, layer):
        n_in, n_out = int(layer.in_shapes[0][-1]), layer.params["num_output"]
        return [WeightSpec("W", (n_in, n_out)), WeightSpec("b", (1, n_out))]

    def reference(self, layer, xs):
        y = xs[0].astype(np.float32) @ layer.weights["W"] + layer.weights["b"][0]
        if layer.params["relu"]:
            y = np.where(y > 0, y, np.float32(0))
        return [y.astype(np.float32)]

    def to_onnx(self, layer, g):
        w = g.weight(layer, "W")
        b = g.weight(layer, "b", layer.weights["b"].reshape(-1))
        out = layer.tops[0]
        if not layer.params["relu"]:
            g.node("Gemm", [layer.bottoms[0], w, b], out)
            return
        y = g.node("Gemm", [layer.bottoms[0], w, b], hint=f"{out}/fc")
        g.node("Relu", [y], out)


HANDLERS = [FusedInnerProduct()]

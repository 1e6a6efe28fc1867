"""Slice: one output per half-open ``[start, end)`` range of the last dimension.

Also the automatic fan-out Slices HugeCTR inserts (every range the full width), which
become Identity nodes.
"""

from __future__ import annotations

from ..ir import fmt_shape
from .base import LayerError, LayerHandler, check_int, require


class Slice(LayerHandler):
    types = ("Slice",)
    splits_labels = True
    tops = (1, 1 << 16)

    def parse(self, p, layer):
        ranges = p.value("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise LayerError(f"field 'ranges' must be a non-empty list of [start, end] pairs, "
                             f"found {ranges!r:.80}", "ranges")
        out = []
        prev = (-1, 0)
        for k, r in enumerate(ranges):
            if not isinstance(r, list) or len(r) != 2:
                raise LayerError(f"field 'ranges[{k}]' must be a [start, end] pair, found {r!r:.80}",
                                 f"ranges[{k}]")
            a, e = (check_int(v, f"ranges[{k}]", 0) for v in r)
            require(a < e, f"range [{a}, {e}) is empty or reversed", f"ranges[{k}]")
            # HugeCTR's SliceLayer: both ends must be non-decreasing from range to range.
            require(prev[0] <= a and prev[1] <= e, f"range [{a}, {e}) is out of order or inside "
                    f"the previous one [{prev[0]}, {prev[1]})", f"ranges[{k}]")
            prev = (a, e)
            out.append((a, e))
        require(len(out) == len(layer.tops), f"{len(out)} ranges but {len(layer.tops)} top "
                "tensors", "ranges")
        return {"ranges": out}

    def infer(self, layer):
        x = layer.in_shapes[0]
        width = int(x[-1])
        for a, e in layer.params["ranges"]:
            require(e <= width, f"range [{a}, {e}) exceeds the input width {width} of "
                    f"{fmt_shape(x)}", "ranges")
        return [tuple(x[:-1]) + (e - a,) for a, e in layer.params["ranges"]]

    def reference(self, layer, xs):
        x = xs[0]
        if x is None:  # a slice of a label: not computed at inference
            return [None] * len(layer.tops)
        return [x[..., a:e].copy() for a, e in layer.params["ranges"]]

    def to_onnx(self, layer, g):
        x = layer.bottoms[0]
        if not g.defined(x):  # labels are no graph inputs; only loss layers read their slices
            return
        width = int(layer.in_shapes[0][-1])
        for top, (a, e) in zip(layer.tops, layer.params["ranges"]):
            if (a, e) == (0, width):
                g.identity(x, top)
            else:
                g.slice(x, [a], [e], [-1], out=top)

    def forward(self, layer, ops, xs, params, *, training=False):
        x = xs[0]
        if x is None:  # a slice of a label: only the loss reads it
            return [None] * len(layer.tops)
        return [ops.slice(x, -1, a, e) for a, e in layer.params["ranges"]]


HANDLERS = [Slice()]

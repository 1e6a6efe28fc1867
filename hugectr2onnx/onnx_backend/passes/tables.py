"""Lookup tables in a narrower type: fp16, or int8 with one scale per row.

Each gather that reads a table gets its result cast (fp16) or dequantized (int8: the row's
scale gathered with the same indices, then multiplied) back to float32, under the gather's
original output name, so everything after the lookup is unchanged.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from .model import GATHERS, PassModel

FP16_MAX = 65504.0


def float_tables(model: PassModel) -> list[str]:
    return [n for n in model.table_names()
            if np.dtype(model.tensors[n].dtype) == np.float32 and len(model.tensors[n].shape) == 2]


def _rewire(model: PassModel, table: str, build) -> int:
    """For every gather reading ``table``: ``build(node, raw_output)`` returns nodes that
    turn the renamed gather output into the original one."""
    done = 0
    out_nodes = []
    for n in model.nodes:
        out_nodes.append(n)
        if n.op_type in GATHERS and n.input[0] == table:
            final = n.output[0]
            raw = model.fresh(f"{final}/raw")
            n.output[0] = raw
            out_nodes.extend(build(n, raw, final))
            done += 1
    del model.nodes[:]
    model.nodes.extend(out_nodes)
    return done


def fp16_tables(model: PassModel) -> int:
    """Tables stored as float16 (half the bytes), cast to float32 after each lookup."""
    tables = float_tables(model)
    for name in tables:
        with np.errstate(over="ignore"):
            model.tensors[name] = np.clip(np.asarray(model.tensors[name]), -FP16_MAX,
                                          FP16_MAX).astype(np.float16)
        _rewire(model, name, lambda n, raw, final: [helper.make_node(
            "Cast", [raw], [final], to=TensorProto.FLOAT, name=model.fresh(f"Cast:{final}"))])
    return len(tables)


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: ``table ~= q * scale``, |error| <= scale / 2 per value."""
    t = np.asarray(table, dtype=np.float32)
    peak = np.abs(t).max(axis=1, keepdims=True)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(t / scale), -127, 127).astype(np.int8)
    return q, scale


def int8_tables(model: PassModel) -> int:
    """Tables stored as int8 plus a float32 scale per row (about a quarter of the bytes for
    wide rows); each lookup gathers the rows and their scales and multiplies."""
    tables = float_tables(model)
    for name in tables:
        q, scale = quantize_rows(model.tensors[name])
        model.tensors[name] = q
        scales = model.add_tensor(f"{name}.row_scale", scale)

        def build(n, raw, final, scales=scales):
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            f = model.fresh(f"{final}/f32")
            s = model.fresh(f"{final}/scale")
            return [helper.make_node("Cast", [raw], [f], to=TensorProto.FLOAT,
                                     name=model.fresh(f"Cast:{f}")),
                    helper.make_node(n.op_type, [scales, n.input[1]], [s],
                                     name=model.fresh(f"{n.op_type}:{s}"), **attrs),
                    helper.make_node("Mul", [f, s], [final], name=model.fresh(f"Mul:{final}"))]
        _rewire(model, name, build)
    return len(tables)

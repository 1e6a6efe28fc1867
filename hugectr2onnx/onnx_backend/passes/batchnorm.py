"""Fold BatchNormalization into the Gemm before it, exact up to float rounding.

A BatchNormalization whose input comes only from a Gemm with constant weights becomes part
of that Gemm (scaled columns, shifted bias). ONNX Runtime then fuses the Gemm with the
following activation, and the per-feature pass over [batch, C] is gone.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from .model import PassModel


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def fold_batchnorm(model: PassModel) -> int:
    """Fold Gemm -> BatchNormalization pairs; returns how many."""
    uses = model.uses()
    producer = model.producers()
    consts = model.tensors
    folded, dropped = 0, set()
    for k, bn in enumerate(model.nodes):
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        gemm = producer.get(bn.input[0])
        if gemm is None or gemm.op_type != "Gemm" or uses[bn.input[0]] != 1:
            continue
        a = _attrs(gemm)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            continue
        params = [consts.get(n) for n in bn.input[1:5]]
        w = consts.get(gemm.input[1])
        c = consts.get(gemm.input[2]) if len(gemm.input) > 2 else None
        if any(not isinstance(p, np.ndarray) for p in params + [w]):
            continue
        if len(gemm.input) > 2 and not isinstance(c, np.ndarray):
            continue
        gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        var = var + _attrs(bn).get("epsilon", 1e-5)
        if not (var > 0).all():  # NaN statistics stay where the runtime shows them
            continue
        scale = gamma / np.sqrt(var)
        w64 = w.astype(np.float64)
        w_new = w64 * scale[:, None] if a.get("transB", 0) else w64 * scale[None, :]
        bias = np.zeros_like(scale) if c is None else np.broadcast_to(
            c.astype(np.float64).reshape(-1), scale.shape)
        c_new = (bias - mean) * scale + beta
        name_w = model.add_tensor(f"{gemm.input[1]}_bn", w_new.astype(np.float32))
        name_c = model.add_tensor(f"{bn.output[0]}.bias_bn", c_new.astype(np.float32))
        del gemm.input[1:]
        gemm.input.extend([name_w, name_c])
        gemm.output[0] = bn.output[0]
        dropped.add(k)
        folded += 1
    if folded:
        model.keep_nodes(k for k in range(len(model.nodes)) if k not in dropped)
        model.drop_unused_tensors()
    return folded

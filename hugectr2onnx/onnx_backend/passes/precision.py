"""Whole-model precision: float16 compute (onnxruntime.transformers.float16) and dynamic int8
Gemm/MatMul (onnxruntime.quantization). Tables are detached first and handled by tables.py."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings

import numpy as np
import onnx
from onnx import helper

from .model import GATHERS, PassModel, detached, reattach, remove_nodes


def to_fp16(model: PassModel) -> int:
    """Weights and compute in float16; float32 inputs and outputs, int64 keys unchanged
    (keep_io_types). The lookups stay float32 (their results are cast), so the tables are
    untouched here: ``fp16_tables`` halves them."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    tables = model.table_names()
    lookups = [n.name for n in model.nodes if n.op_type in GATHERS and n.input[0] in tables]
    proto = detached(model, tables)
    before = sum(1 for n in proto.graph.node if n.op_type == "Cast")
    with warnings.catch_warnings():  # it warns per value it clamps to the float16 range
        warnings.simplefilter("ignore")
        proto = convert_float_to_float16(proto, keep_io_types=True, node_block_list=lookups)
    _uncast_tables(proto, tables)
    model.result = reattach(proto, model, tables)
    return sum(1 for n in proto.graph.node if n.op_type == "Cast") - before


def _uncast_tables(proto, tables) -> None:
    """keep_io_types casts every float input to float16, the detached tables too, and the
    blocked lookups cast them back: a whole-table round trip per run. Read them directly."""
    nodes = proto.graph.node
    down = {n.input[0]: k for k, n in enumerate(nodes) if n.op_type == "Cast" and n.input}
    alias, dropped = {}, set()
    for t in tables:
        to16 = down.get(t)
        to32 = down.get(nodes[to16].output[0]) if to16 is not None else None
        if to32 is None:
            continue
        alias[nodes[to32].output[0]] = t
        dropped.update((to16, to32))
    for n in nodes:
        for k, name in enumerate(n.input):
            if name in alias:
                n.input[k] = alias[name]
    uses = {i for k, n in enumerate(nodes) if k not in dropped for i in n.input}
    remove_nodes(nodes, [k for k in dropped if not any(o in uses for o in nodes[k].output)])


def gemm_to_matmul(model: PassModel) -> int:
    """Gemm with a constant B becomes MatMul (+ Add): ONNX Runtime's dynamic quantization
    handles MatMul only. Same output names."""
    changed, out = 0, []
    for n in model.nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        w = model.tensors.get(n.input[1]) if n.op_type == "Gemm" else None
        if (w is None or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                or attrs.get("beta", 1.0) != 1.0):
            out.append(n)
            continue
        w = np.asarray(w)
        if attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        name_w = model.add_tensor(f"{n.input[1]}.kn", w)
        final = n.output[0]
        has_bias = len(n.input) > 2 and n.input[2]
        mm = model.fresh(f"{final}/matmul") if has_bias else final
        out.append(helper.make_node("MatMul", [n.input[0], name_w], [mm], name=model.fresh(
            f"MatMul:{mm}")))
        if has_bias:
            out.append(helper.make_node("Add", [mm, n.input[2]], [final],
                                        name=model.fresh(f"Add:{final}")))
        changed += 1
    del model.nodes[:]
    model.nodes.extend(out)
    model.drop_unused_tensors()
    return changed


MIN_INT8_COLUMNS = 8  # narrower products (DCN's cross layers: x . w) stay float


def to_int8(model: PassModel, *, per_channel: bool = False) -> int:
    """Dynamic int8 quantization of the MatMuls with a constant 2-D weight of at least
    MIN_INT8_COLUMNS columns (activations quantized per batch at run time, weights ahead of
    time). Matrix-vector products gain nothing and lose much: a cross layer's x . w over
    values up to a few hundred, quantized per tensor, is off by ~1e6 relative."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    gemm_to_matmul(model)
    tables = model.table_names()
    targets = [n.name for n in model.nodes
               if n.op_type == "MatMul" and n.input[1] in model.tensors
               and len(model.tensors[n.input[1]].shape) == 2
               and model.tensors[n.input[1]].shape[1] >= MIN_INT8_COLUMNS]
    if not targets:
        return 0
    proto = detached(model, tables)
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        out = os.path.join(tmp, "int8.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(proto, out, op_types_to_quantize=["MatMul"],
                             nodes_to_quantize=targets, per_channel=per_channel,
                             weight_type=QuantType.QInt8)
        proto = onnx.load(out)
    model.result = reattach(proto, model, tables)
    return len(targets)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs advice on the root logger ("consider pre-processing")."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)

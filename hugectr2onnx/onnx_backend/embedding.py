"""ONNX emission of a sparse embedding: key lookup, row gather and the slot combiner."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..ir import Embedding
from .external import SlotOrderTable, ZeroRowTable
from .lookup import build_index, resolve_strategy


GATHER_ND_MAX_VEC = 64  # widest rows for which GatherND beats Gather (measured)
TABLE_ORDERS = ("auto", "slot", "file")
SLOT_ORDER_MAX_BYTES = 4 << 30  # "auto" keeps larger tables in file order (streamed copy)


@dataclass
class EmbeddingOptions:
    lookup: str = "auto"
    padding_key: int | None = -1
    num_gpus: int = 1  # > 1 only for Localized tables whose keys repeat across GPUs
    table_order: str = "auto"


def slot_order_limit() -> int:
    """Largest table "auto" lays out in slot order: 4 GiB, or a quarter of the RAM."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return SLOT_ORDER_MAX_BYTES
    return min(SLOT_ORDER_MAX_BYTES, ram // 4)


def check_table_order(table_order: str) -> None:
    if table_order not in TABLE_ORDERS:
        raise UsageError(f"table_order must be one of {list(TABLE_ORDERS)}, "
                         f"found {table_order!r}")


def uses_slot_order(keys: np.ndarray, vectors: np.ndarray, lookup: str,
                    table_order: str) -> bool:
    """Whether a (single-GPU) table is stored in its hash index's slot order. That saves
    the lookup one random read per key, but writing it gathers rows in random order: the
    table is read into memory instead of being streamed. "auto" does it for hashed tables up
    to ``slot_order_limit()``."""
    check_table_order(table_order)
    if table_order == "file" or resolve_strategy(keys, lookup) != "hash":
        return False
    return table_order == "slot" or int(vectors.nbytes) <= slot_order_limit()


def table_with_zero_row(vectors: np.ndarray) -> ZeroRowTable:
    """Row 0 zero (missing keys), then the trained rows; streamed from disk when saved."""
    return ZeroRowTable(vectors)


def emit_lookup(g, keys: str, table_keys: np.ndarray, vectors: np.ndarray, per_sample: int,
                opts: EmbeddingOptions, hint: str):
    """Index and table initializer of one single-GPU table: returns the int64 rows for
    ``keys`` (same shape), the index and the table initializer's name."""
    slot = uses_slot_order(table_keys, vectors, opts.lookup, opts.table_order)
    index = build_index(table_keys, strategy=opts.lookup, slot_order=slot)
    rows = index.emit(g, keys, hint, per_sample=per_sample)
    tensor = SlotOrderTable(vectors, index.table_rows()) if slot else ZeroRowTable(vectors)
    weights = g.add_initializer(f"{hint}.table", tensor)
    return rows, index, weights


def emit_embedding(g, emb: Embedding, opts: EmbeddingOptions) -> dict:
    """Emit ``emb.top`` from int64 keys ``emb.bottom`` [B, slot_num, max_nnz]."""
    table = emb.table
    hint = emb.top
    keys = emb.bottom
    pad = opts.padding_key
    per_sample = emb.slot_num * emb.max_nnz
    if opts.num_gpus > 1:
        rows, strategy, pad_is_key = _grouped_rows(g, emb, opts, keys, hint)
        weights = g.add_initializer(f"{hint}.table", table_with_zero_row(table.vectors))
    else:
        if id(table) in g.shared:  # an embedding-collection table serving another lookup
            _, index, weights = g.shared[id(table)]
            rows = index.emit(g, keys, hint, per_sample=per_sample)
        else:
            rows, index, weights = emit_lookup(g, keys, table.keys, table.vectors,
                                               per_sample, opts, hint)
            g.shared[id(table)] = (table, index, weights)  # the table pins its id
        strategy = index.name
        pad_is_key = pad is not None and bool(index.rows(np.array([pad], np.int64))[0])
    mean = emb.combiner == "mean" and emb.max_nnz > 1
    if pad is not None and (pad_is_key or mean):
        is_pad = _flat_equal(g, keys, pad, f"{hint}/is_pad")
        if pad_is_key:  # padding wins over a trained key of the same value
            rows = g.node("Where", [is_pad, g.const(np.int64(0)), rows], hint=f"{hint}/rows_nopad")
    vecs = gather_rows(g, weights, rows, emb.vec_size, hint)  # [B, S, nnz, V]
    if emb.combiner == "concat":  # the slot's vectors side by side, absent keys as zeros
        g.reshape(vecs, [-1, emb.slot_num, emb.out_width], out=emb.top)
    elif emb.max_nnz == 1:
        g.squeeze(vecs, [2], out=emb.top)
    elif not mean:
        g.reduce("ReduceSum", vecs, [2], keepdims=False, out=emb.top)
    elif pad is None:  # every position holds a key: divide by max_nnz
        g.reduce("ReduceMean", vecs, [2], keepdims=False, out=emb.top)
    else:
        total = g.reduce("ReduceSum", vecs, [2], keepdims=False)
        count = g.reduce("ReduceSum", g.node("Cast", [g.node("Not", [is_pad])], to=1), [2],
                         keepdims=True)
        denom = g.node("Max", [count, g.const(np.float32(1.0))], hint=f"{hint}/count")
        g.node("Div", [total, denom], emb.top)
    return {"strategy": strategy, "keys": int(table.num_keys)}


def gather_rows(g, table: str, rows: str, vec_size: int, hint: str,
                out: str | None = None) -> str:
    """``table[rows]``. ONNX Runtime's CPU Gather spends about 40 ns of bookkeeping per index;
    GatherND spends about half, which wins for rows up to 64 floats (1.3-1.7x at 16 and 64)
    but loses ~5% to Gather's copy at 128 and 256 (docs/lookup.md)."""
    if vec_size <= GATHER_ND_MAX_VEC:
        return g.node("GatherND", [table, g.unsqueeze(rows, [-1])], out, hint=f"{hint}/vectors")
    return g.node("Gather", [table, rows], out, axis=0, hint=f"{hint}/vectors")


def _flat_equal(g, keys: str, value: int, hint: str) -> str:
    """``keys == value``, on a flat view: ORT broadcasts a scalar over [B, S, 1] slowly."""
    flat = g.reshape(keys, [-1])
    eq = g.node("Equal", [flat, g.const(np.int64(value))], hint=hint)
    return g.node("Reshape", [eq, g.node("Shape", [keys])], hint=f"{hint}_shaped")


def _grouped_rows(g, emb: Embedding, opts: EmbeddingOptions, keys: str, hint: str):
    """Localized tables: slot s reads the rows its GPU (s mod num_gpus) trained."""
    table = emb.table
    gpus = opts.num_gpus
    group = (np.asarray(table.slot_ids) % np.uint64(gpus)).astype(np.int64)
    parts, order = [], []
    strategy, pad_is_key = "", False
    for gid in range(gpus):
        slots = np.arange(gid, emb.slot_num, gpus)
        if slots.size == 0:
            continue
        members = np.flatnonzero(group == gid)
        sub_keys = g.node("Gather", [keys, g.ints(slots)], axis=1, hint=f"{hint}/gpu{gid}_keys")
        if members.size == 0:
            parts.append(g.node("Mul", [sub_keys, g.const(np.int64(0))], hint=f"{hint}/none"))
        else:
            index = build_index(table.keys[members], members + 1, strategy=opts.lookup)
            parts.append(index.emit(g, sub_keys, f"{hint}/gpu{gid}",
                                    per_sample=slots.size * emb.max_nnz))
            strategy = index.name
            if opts.padding_key is not None:
                pad_is_key |= bool(index.rows(np.array([opts.padding_key], np.int64))[0])
        order.extend(slots.tolist())
    merged = g.node("Concat", parts, axis=1, hint=f"{hint}/grouped_rows")
    inverse = np.argsort(np.asarray(order))
    rows = g.node("Gather", [merged, g.ints(inverse)], axis=1, hint=f"{hint}/rows")
    return rows, strategy, pad_is_key

"""Independent numpy reference of a whole HugeCTR graph, written from the spec's formulas.

Embeddings are looked up with a sorted-key search (not the ONNX lookup strategies); each
dense layer runs its handler's ``reference``. Backs the ``verify`` command and the tests.
"""

from __future__ import annotations

import numpy as np

from .hugectr.sparse import gpu_count
from .ir import Embedding, Graph
from .layers.base import Registry, default_registry


def embedding_reference(emb: Embedding, keys: np.ndarray, *, padding_key: int | None = -1,
                        num_gpus: int = 1) -> np.ndarray:
    """HUGECTR_LAYERS §2.2: sum of found rows; mean (a collection's ``average``) divides by
    the count of non-padding keys, an empty bag giving zeros; ``concat`` (collections) puts
    the slot's vectors side by side, absent and unseen keys as zero vectors."""
    table = emb.table
    keys = np.asarray(keys, dtype=np.int64)
    b, s, n = keys.shape
    out_rows = np.full(keys.shape, -1, dtype=np.int64)
    slot_group = np.arange(s) % num_gpus
    groups = (np.zeros(table.num_keys, dtype=np.int64) if num_gpus == 1 else
              (np.asarray(table.slot_ids) % np.uint64(num_gpus)).astype(np.int64))
    for gid in range(num_gpus):
        members = np.flatnonzero(groups == gid)
        if members.size == 0:
            continue
        order = members[np.argsort(table.keys[members], kind="stable")]
        sorted_keys = np.asarray(table.keys[order])
        q = keys[:, slot_group == gid, :]
        pos = np.clip(np.searchsorted(sorted_keys, q), 0, sorted_keys.size - 1)
        hit = sorted_keys[pos] == q
        out_rows[:, slot_group == gid, :] = np.where(hit, order[pos], -1)
    present = np.ones(keys.shape, dtype=bool) if padding_key is None else keys != padding_key
    found = (out_rows >= 0) & present
    vectors = np.asarray(table.vectors, dtype=np.float32)
    if not vectors.shape[0]:  # a dynamic table that never saw a key
        vectors = np.zeros((1, vectors.shape[1]), np.float32)
    gathered = np.where(found[..., None], vectors[np.where(found, out_rows, 0)], np.float32(0))
    if emb.combiner == "concat":
        return gathered.reshape(b, s, n * vectors.shape[1]).astype(np.float32)
    total = gathered.sum(axis=2, dtype=np.float32)
    if emb.combiner == "mean":
        count = present.sum(axis=2, keepdims=True).astype(np.float32)
        total = np.where(count > 1, total / np.maximum(count, 1), total)
    return total.astype(np.float32)


def run_reference(graph: Graph, feeds: dict[str, np.ndarray], *, padding_key: int | None = -1,
                  num_gpus: int | None = None, registry: Registry | None = None,
                  keep_all: bool = False) -> dict[str, np.ndarray]:
    """Predictions keyed by label name (every tensor too, with ``keep_all``)."""
    registry = registry or default_registry()
    values: dict[str, np.ndarray] = {graph.data.dense_name:
                                     np.asarray(feeds[graph.data.dense_name], dtype=np.float32)}
    for emb in graph.embeddings:
        if emb.top in feeds:
            values[emb.top] = np.asarray(feeds[emb.top], dtype=np.float32)
        else:
            gpus = 1
            if emb.localized and emb.table.slot_ids is not None:
                keys = np.asarray(emb.table.keys)
                if np.unique(keys).size != keys.size:
                    gpus = num_gpus or gpu_count(emb) or 1
            values[emb.top] = embedding_reference(emb, feeds[emb.bottom],
                                                  padding_key=padding_key, num_gpus=gpus)
    outputs = {}
    for layer in graph.layers:
        h = registry.get(layer.type)
        xs = [values.get(b) for b in layer.bottoms]  # labels stay None
        ys = h.reference(layer, xs)
        if h.is_loss:
            outputs[layer.bottoms[1]] = ys[0].astype(np.float32)
        for t, y in zip(layer.tops, ys):
            values[t] = y
    if keep_all:
        values.update(outputs)
        return values
    return {o.name: outputs[o.name] if o.name in outputs else values[o.name].astype(np.float32)
            for o in graph.outputs}

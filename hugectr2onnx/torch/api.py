"""Load HugeCTR files into a ``HugeCTRModule`` and write a trained module back."""

from __future__ import annotations

import dataclasses
import json

from .. import loader
from ..errors import UsageError
from ..hugectr.collection_description import (COLLECTION_TYPE, description_document,
                                             parse_description)
from ..hugectr.files import read_text
from ..hugectr.graph_json import parse_graph
from ..hugectr.snapshot import CollectionSnapshot, write_snapshot
from ..hugectr.sparse import check_keys
from ..hugectr.writer import Artifacts
from ..ir import Graph
from ..layers.base import default_registry
from ..options import ConvertOptions
from .module import HugeCTRModule


def load_model(graph_config, dense_model, sparse_models=None, ntp_file=None, *,
               options: ConvertOptions | None = None, sparse_grad: bool = False,
               max_new_keys: int | None = None, **kwargs) -> HugeCTRModule:
    """A trainable module from HugeCTR's files; arguments and keyword options as ``convert()``
    (those that only shape the ONNX file, such as ``opset`` or ``lookup``, change nothing).

    Without ``sparse_models`` the module takes embedding vectors (dense-only mode).
    ``sparse_grad``: sparse gradients for the tables. ``max_new_keys``: rows reserved per table
    for keys first seen in training (default: up to HugeCTR's ``max_vocabulary_size_global``;
    0 freezes the vocabulary)."""
    o = ConvertOptions.from_kwargs(options, **kwargs)
    if max_new_keys is not None and (isinstance(max_new_keys, bool) or max_new_keys < 0):
        raise UsageError(f"max_new_keys must be a non-negative integer, found {max_new_keys!r}")
    ebc = o.embedding_collection
    graph = loader.load_model(graph_config, dense_model, sparse_models, ntp_file,
                              key_type=o.key_type, projection_dims=o.projection_dims,
                              strict_finite=o.strict_finite, embedding_collection=ebc)
    if ebc and sparse_models is None and any(e.table is None for e in graph.embeddings):
        raise UsageError("the graph's sparse embeddings need sparse_models besides the "
                         "embedding collection")
    collection = description_document(ebc) if ebc else None
    dynamic = {t["name"] for t in collection["tables"] if t["vocab"] < 0} if ebc else set()
    text = read_text(graph_config, "graph config")
    gpus = [check_keys(e.table, e, o.num_gpus) if e.table is not None else 1
            for e in graph.embeddings]
    return HugeCTRModule(graph, graph_json=text, padding_key=o.padding_key, table_gpus=gpus,
                         capacities=[table_capacity(e, max_new_keys, e.table_name in dynamic
                                                    and e.type == COLLECTION_TYPE)
                                     for e in graph.embeddings],
                         sparse=sparse_grad, progress=o.progress, collection=collection)


DYNAMIC_RESERVE = 1 << 16  # least rows a dynamic collection table reserves for new keys


def table_capacity(emb, max_new_keys: int | None, dynamic: bool = False) -> int:
    """Rows of a table: HugeCTR's vocabulary size (or the slot sizes' sum), at least its keys.
    A dynamic collection table (vocab -1) has no bound in HugeCTR: it reserves as many new
    rows as it has keys, at least DYNAMIC_RESERVE."""
    n = emb.table.num_keys if emb.table is not None else 0
    vocab = emb.max_vocabulary_size_global or sum(emb.slot_size_array)
    cap = n + max(n, DYNAMIC_RESERVE) if dynamic else max(n, vocab)
    return cap if max_new_keys is None else min(cap, n + max_new_keys)


def save_hugectr(module: HugeCTRModule, directory, prefix: str = "model",
                 iteration: int = 0) -> Artifacts:
    """Write the module as HugeCTR snapshot files: ``{prefix}.json`` (the graph as loaded),
    ``{prefix}_dense_{iteration}.model``, its ``.ntp.json`` (BatchNorm statistics) and one
    sparse folder ``{prefix}{i}_sparse_{iteration}.model`` per table (``key``,
    ``emb_vector``, ``slot_id`` for Localized); an embedding collection as an
    ``embedding_dump`` folder ``{prefix}_ebc_{iteration}/`` and its description
    ``{prefix}_ebc_{iteration}.json``. Each file appears complete or not at all (hugectr/
    snapshot.py). The result's ``graph_config``, ``dense_model``, ``sparse_models``,
    ``ntp_file`` and ``embedding_collection`` go straight to ``convert()`` and
    ``load_model()``."""
    if module.graph_json is None:
        raise UsageError("the module has no graph JSON to write (build it with load_model)")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise UsageError(f"iteration must be a non-negative integer, found {iteration!r}")
    collection = None
    if module.collection is not None:
        collection = CollectionSnapshot(module.collection, module.collection_tables())
    return write_snapshot(directory, trained_graph(module), module.graph_json, module.tables(),
                          prefix=prefix, iteration=iteration, collection=collection)


def trained_graph(module: HugeCTRModule) -> Graph:
    """The module's graph with its current tensors as layer weights (for the writers)."""
    layers = [dataclasses.replace(layer, weights=module.layer_weights(i))
              for i, layer in enumerate(module.graph.layers)]
    return dataclasses.replace(module.graph, layers=layers)


def graph_from_json(text: str, source: str = "<checkpoint>", projection_dims=None,
                    collection: dict | None = None) -> Graph:
    """The IR of a graph JSON held in memory (a checkpoint's), without weights.
    ``collection``: the embedding collection's description document."""
    desc = parse_description(collection, source) if collection is not None else None
    graph = parse_graph(json.loads(text), source, default_registry(), desc)
    if projection_dims is not None:
        loader.apply_projection_dims(graph, projection_dims)
    return graph

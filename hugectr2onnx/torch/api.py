"""Load HugeCTR files into a ``HugeCTRModule`` and write a trained module back."""

from __future__ import annotations

import dataclasses
import json

from .. import loader
from ..errors import UsageError
from ..hugectr.files import read_text
from ..hugectr.graph_json import parse_graph
from ..hugectr.sparse import check_keys
from ..hugectr.snapshot import write_snapshot
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
    graph = loader.load_model(graph_config, dense_model, sparse_models, ntp_file,
                              key_type=o.key_type, projection_dims=o.projection_dims,
                              strict_finite=o.strict_finite)
    text = read_text(graph_config, "graph config")
    gpus = [check_keys(e.table, e, o.num_gpus) if e.table is not None else 1
            for e in graph.embeddings]
    return HugeCTRModule(graph, graph_json=text, padding_key=o.padding_key, table_gpus=gpus,
                         capacities=[table_capacity(e, max_new_keys) for e in graph.embeddings],
                         sparse=sparse_grad, progress=o.progress)


def table_capacity(emb, max_new_keys: int | None) -> int:
    """Rows of a table: HugeCTR's vocabulary size (or the slot sizes' sum), at least its keys."""
    n = emb.table.num_keys if emb.table is not None else 0
    vocab = emb.max_vocabulary_size_global or sum(emb.slot_size_array)
    cap = max(n, vocab)
    return cap if max_new_keys is None else min(cap, n + max_new_keys)


def save_hugectr(module: HugeCTRModule, directory, prefix: str = "model",
                 iteration: int = 0) -> Artifacts:
    """Write the module as HugeCTR snapshot files: ``{prefix}.json`` (the graph as loaded),
    ``{prefix}_dense_{iteration}.model``, its ``.ntp.json`` (BatchNorm statistics) and one
    sparse folder ``{prefix}{i}_sparse_{iteration}.model`` per table (``key``,
    ``emb_vector``, ``slot_id`` for Localized), by hugectr/snapshot.py: each file appears
    complete or not at all.
    The result's ``graph_config``, ``dense_model``, ``sparse_models`` and ``ntp_file`` go
    straight to ``convert()`` and ``load_model()``."""
    if module.graph_json is None:
        raise UsageError("the module has no graph JSON to write (build it with load_model)")
    return write_snapshot(directory, trained_graph(module), module.graph_json, module.tables(),
                          prefix=prefix, iteration=iteration)


def trained_graph(module: HugeCTRModule) -> Graph:
    """The module's graph with its current tensors as layer weights (for the writers)."""
    layers = [dataclasses.replace(layer, weights=module.layer_weights(i))
              for i, layer in enumerate(module.graph.layers)]
    return dataclasses.replace(module.graph, layers=layers)


def graph_from_json(text: str, source: str = "<checkpoint>", projection_dims=None) -> Graph:
    """The IR of a graph JSON held in memory (a checkpoint's), without weights."""
    graph = parse_graph(json.loads(text), source, default_registry())
    if projection_dims is not None:
        loader.apply_projection_dims(graph, projection_dims)
    return graph

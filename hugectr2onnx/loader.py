"""Read a HugeCTR model's artifacts into the IR. Backend-neutral: no ONNX, torch or TF here."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import NonFiniteWeightError, UsageError
from .hugectr.collection_description import (COLLECTION_TYPE, check_with_dump,
                                             load_collection_tables, load_description)
from .hugectr.dense import load_dense
from .hugectr.graph_json import load_graph
from .hugectr.ntp import load_ntp
from .hugectr.sparse import count_nonfinite, load_table
from .ir import Graph


def load_model(graph_config, dense_model, sparse_models=None, ntp_file=None, *,
               key_type: str = "I64", projection_dims=None, strict_finite: bool = False,
               warn=None, embedding_collection=None) -> Graph:
    """Read all HugeCTR artifacts into the IR (tables stay memory-mapped).

    ``embedding_collection``: the description file of the model's embedding collection
    (docs/embedding_collection.md); its tables are read from the dump it names."""
    collection = load_description(embedding_collection) if embedding_collection else None
    meta = check_with_dump(collection) if collection else None
    graph = load_graph(graph_config, collection=collection)
    if projection_dims is not None:
        apply_projection_dims(graph, projection_dims)
    load_dense(graph, dense_model)
    load_ntp(graph, ntp_file)
    legacy = [e for e in graph.embeddings if e.type != COLLECTION_TYPE]
    if sparse_models is not None:
        sparse_models = as_list(sparse_models)
        if len(sparse_models) != len(legacy):
            raise UsageError(f"{len(sparse_models)} sparse models given, the graph has "
                             f"{len(legacy)} embeddings"
                             + (" besides its embedding collection" if collection else ""))
        for emb, path in zip(legacy, sparse_models):
            emb.table = load_table(path, emb, key_type)
    if collection is not None:
        load_collection_tables(collection, [e for e in graph.embeddings
                                            if e.type == COLLECTION_TYPE], meta)
    check_finite(graph, strict_finite, warn, str(dense_model))
    return graph


def as_list(paths) -> list:
    if paths is None:
        return []
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def apply_projection_dims(graph: Graph, dims) -> None:
    crosses = [l for l in sorted(graph.layers, key=lambda l: l.index) if l.type == "MultiCross"]
    dims = [dims] * len(crosses) if isinstance(dims, int) else list(dims)
    if len(dims) != len(crosses):
        raise UsageError(f"{len(dims)} projection_dims given for {len(crosses)} MultiCross layers")
    for layer, p in zip(crosses, dims):
        layer.params["projection_dim"] = int(p)


def check_finite(graph: Graph, strict: bool, warn, dense_file: str) -> None:
    for layer in graph.layers:
        for name, w in layer.weights.items():
            if not np.isfinite(w).all():
                bad = int(np.size(w) - np.isfinite(w).sum())
                msg = f"{layer.label} weight {name} has {bad} NaN/Inf values"
                if strict:
                    raise NonFiniteWeightError(msg, file=dense_file)
                (warn or warnings.warn)(msg)
    seen = set()
    for emb in graph.embeddings:
        if emb.table is None or id(emb.table) in seen:  # collections share tables
            continue
        seen.add(id(emb.table))
        bad = count_nonfinite(emb.table.vectors)
        if bad:
            msg = f"embedding #{emb.index} ({emb.top}) has {bad} NaN/Inf values"
            if strict:
                raise NonFiniteWeightError(msg, file=emb.table.source)
            (warn or warnings.warn)(msg)

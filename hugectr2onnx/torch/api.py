"""Load HugeCTR files into a ``HugeCTRModule`` and write a trained module back."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import loader
from ..errors import OutputError, UsageError
from ..hugectr.files import read_text
from ..hugectr.graph_json import parse_graph
from ..hugectr.sparse import check_keys
from ..hugectr.writer import Artifacts, write_dense, write_ntp, write_sparse_folder
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
    ``emb_vector``, ``slot_id`` for Localized). Each file appears complete or not at all.
    The result's ``graph_config``, ``dense_model``, ``sparse_models`` and ``ntp_file`` go
    straight to ``convert()`` and ``load_model()``."""
    if module.graph_json is None:
        raise UsageError("the module has no graph JSON to write (build it with load_model)")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise UsageError(f"iteration must be a non-negative integer, found {iteration!r}")
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{prefix}-", dir=directory))
    except OSError as e:
        raise OutputError(f"cannot create the output directory: {e.strerror}", file=str(directory))
    try:
        graph = trained_graph(module)
        names = {"graph": f"{prefix}.json", "dense": f"{prefix}_dense_{iteration}.model"}
        names["ntp"] = names["dense"] + ".ntp.json"
        (staging / names["graph"]).write_text(module.graph_json)
        write_dense(staging / names["dense"], graph)
        # every float32 digit: HugeCTR's own %f would lose running variances below 5e-7
        has_ntp = write_ntp(staging / names["ntp"], graph, exact=True)
        sparse = []
        for i, table in enumerate(module.tables()):
            name = f"{prefix}{i}_sparse_{iteration}.model"
            write_sparse_folder(staging / name, table["keys"], table["vectors"],
                                table.get("slot_ids"))
            sparse.append(name)
        moved = [names["graph"], names["dense"]] + ([names["ntp"]] if has_ntp else []) + sparse
        for name in moved:
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(staging / name, target)
    except OSError as e:
        raise OutputError(f"cannot write the HugeCTR files: {e.strerror or e}",
                          file=str(getattr(e, "filename", None) or directory))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Artifacts(graph_config=str(directory / names["graph"]),
                     dense_model=str(directory / names["dense"]),
                     ntp_file=str(directory / names["ntp"]) if has_ntp else None,
                     sparse_models=[str(directory / n) for n in sparse])


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

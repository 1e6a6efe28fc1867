"""A ``.pt`` checkpoint: the module's state_dict plus the graph JSON it was built from."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import InputFileError
from .api import graph_from_json
from .module import HugeCTRModule

FORMAT = "hugectr2onnx.torch"
VERSION = 1


def save_checkpoint(module: HugeCTRModule, path) -> str:
    """Write ``path`` atomically (a temp file, then rename)."""
    crosses = [l.params.get("projection_dim", 0) for l in module.graph.layers
               if l.type == "MultiCross"]
    tables = [module.embeddings[k] for k in module.embedding_keys]  # per graph embedding
    state = module.state_dict()
    for name, emb in module.embeddings.items():  # rows in use only: reserved rows are redrawn
        n = int(emb.num_keys)
        for part in ("weight", "keys", "slot_ids"):
            key = f"embeddings.{name}.{part}"
            if key in state:
                state[key] = state[key][:n].clone()
    doc = {"format": FORMAT, "version": VERSION, "graph_json": module.graph_json,
           "source": module.graph.source, "padding_key": module.padding_key,
           "projection_dims": crosses, "with_tables": bool(tables),
           "capacities": [t.capacity for t in tables], "table_gpus": [t.num_gpus for t in tables],
           "sparse": any(t.sparse for t in tables), "state_dict": state,
           "collection": None if module.collection is None else json.dumps(module.collection)}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(doc, tmp)
    return str(path)


def load_checkpoint(path) -> HugeCTRModule:
    """The module saved by ``save_checkpoint`` (or ``hugectr2onnx to-torch``)."""
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputFileError("no such file", file=str(path))
    except Exception as e:  # torch raises many kinds for a file that is not a checkpoint
        raise InputFileError(f"not a torch checkpoint: {str(e).splitlines()[0][:200]}",
                             file=str(path))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputFileError(f"not a {FORMAT} checkpoint (no 'format': '{FORMAT}' entry)",
                             file=str(path))
    if doc.get("version") != VERSION:
        raise InputFileError(f"checkpoint version {doc.get('version')!r}, this tool reads "
                             f"{VERSION}", file=str(path), where="version")
    collection = json.loads(doc["collection"]) if doc.get("collection") else None
    graph = graph_from_json(doc["graph_json"], doc.get("source") or str(path),
                            doc["projection_dims"] or None, collection)
    state = dict(doc["state_dict"])
    tables = doc["with_tables"]
    module = HugeCTRModule(graph, graph_json=doc["graph_json"], padding_key=doc["padding_key"],
                           table_gpus=doc["table_gpus"] or None,
                           capacities=doc["capacities"] or None, sparse=doc["sparse"],
                           with_tables=tables, collection=collection)
    try:
        for name, emb in module.embeddings.items():
            parts = {p: state.pop(f"embeddings.{name}.{p}", None)
                     for p in ("weight", "keys", "slot_ids", "num_keys")}
            emb.load_rows(parts["keys"], parts["weight"], parts["slot_ids"])
        result = module.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("embeddings.")]
        if missing or result.unexpected_keys:
            raise ValueError(f"missing {missing}, unexpected {result.unexpected_keys}")
    except (RuntimeError, ValueError, TypeError, AttributeError) as e:
        raise InputFileError(f"checkpoint does not fit its graph: {str(e).splitlines()[0][:300]}",
                             file=str(path))
    return module

"""The ``inference`` block of graphs for HugeCTR's inference session and Triton backend.

It names the trained files (``dense_model_file``, ``sparse_model_file`` or
``sparse_model_files``) and ``max_batchsize``. The paths are usually absolute paths of the
machine that served the model, so each is taken as written when it exists, else by its file
name beside the graph JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConversionError, UsageError
from .files import read_text


@dataclass
class InferenceFiles:
    dense: str | None = None
    sparse: list[str] = field(default_factory=list)
    max_batchsize: int | None = None


def inference_files(graph_config) -> InferenceFiles:
    """The files the graph's inference block names, resolved; empty when it has none.
    A graph that cannot be read yields nothing here: loading it reports the problem."""
    try:
        doc = json.loads(read_text(graph_config, "graph config"))
    except (ConversionError, ValueError, RecursionError):  # load_graph will name it
        return InferenceFiles()
    block = doc.get("inference") if isinstance(doc, dict) else None
    if not isinstance(block, dict):
        return InferenceFiles()
    where = Path(graph_config).parent
    dense = block.get("dense_model_file")
    sparse = block.get("sparse_model_files", block.get("sparse_model_file"))
    sparse = [sparse] if isinstance(sparse, str) else sparse if isinstance(sparse, list) else []
    batch = block.get("max_batchsize")
    return InferenceFiles(
        dense=_resolve(dense, where, "dense_model_file") if isinstance(dense, str) else None,
        sparse=[_resolve(s, where, "sparse_model_files") for s in sparse if isinstance(s, str)],
        max_batchsize=batch if isinstance(batch, int) and not isinstance(batch, bool) else None)


def _resolve(written: str, beside: Path, key: str) -> str:
    if Path(written).exists():
        return written
    local = beside / Path(written).name
    if local.exists():
        return str(local)
    raise UsageError(f"the graph's inference.{key} names {written}, which does not exist, "
                     f"and there is no {local.name} beside the graph; pass the file explicitly")

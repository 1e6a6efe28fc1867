"""Write a trained model back as a HugeCTR snapshot, for any backend (torch, TensorFlow).

The backend hands over the IR with its current layer weights, the graph JSON text it was
loaded from and its tables; every file is staged in the output directory and renamed into
place, so each appears complete or not at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..atomic import staging_dir
from ..errors import OutputError, UsageError
from ..ir import Graph
from .writer import Artifacts, write_dense, write_ntp, write_sparse_folder


def write_snapshot(directory, graph: Graph, graph_json: str, tables: list[dict], *,
                   prefix: str = "model", iteration: int = 0) -> Artifacts:
    """``{prefix}.json``, ``{prefix}_dense_{iteration}.model``, its ``.ntp.json`` (BatchNorm
    statistics, every float32 digit: HugeCTR's own %f would lose running variances below
    5e-7) and one folder ``{prefix}{i}_sparse_{iteration}.model`` per table (``key``,
    ``emb_vector``, ``slot_id`` when the table has ``slot_ids``). ``tables``: dicts with
    ``keys``, ``vectors`` and optionally ``slot_ids``, in embedding order."""
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise UsageError(f"iteration must be a non-negative integer, found {iteration!r}")
    directory = Path(directory)
    with staging_dir(directory, f".{prefix}-") as staging:
        try:
            graph_name, dense = f"{prefix}.json", f"{prefix}_dense_{iteration}.model"
            ntp = dense + ".ntp.json"
            (staging / graph_name).write_text(graph_json)
            write_dense(staging / dense, graph)
            has_ntp = write_ntp(staging / ntp, graph, exact=True)
            sparse = []
            for i, table in enumerate(tables):
                name = f"{prefix}{i}_sparse_{iteration}.model"
                write_sparse_folder(staging / name, table["keys"], table["vectors"],
                                    table.get("slot_ids"))
                sparse.append(name)
            for name in [graph_name, dense] + ([ntp] if has_ntp else []) + sparse:
                target = directory / name
                if target.is_dir():
                    shutil.rmtree(target)
                os.replace(staging / name, target)
        except OSError as e:
            raise OutputError(f"cannot write the HugeCTR files: {e.strerror or e}",
                              file=str(getattr(e, "filename", None) or directory))
    return Artifacts(graph_config=str(directory / graph_name), dense_model=str(directory / dense),
                     ntp_file=str(directory / ntp) if has_ntp else None,
                     sparse_models=[str(directory / n) for n in sparse])

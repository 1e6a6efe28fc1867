"""Write a trained model back as a HugeCTR snapshot, for any backend (torch, TensorFlow).

The backend hands over the IR with its current layer weights, the graph JSON text it was
loaded from and its tables; every file is staged in the output directory and renamed into
place, so each appears complete or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..atomic import staging_dir
from ..errors import OutputError, UsageError
from ..ir import Graph
from .dump_writer import write_embedding_dump
from .writer import Artifacts, write_dense, write_ntp, write_sparse_folder


@dataclass
class CollectionSnapshot:
    """A trained embedding collection: its description document as loaded (``key_type``
    filled in from the dump) and each table's rows in use, by table name."""
    description: dict
    tables: dict  # table name -> (keys int64 [K], vectors float32 [K, D])

    def table_order(self) -> list[str]:
        """HugeCTR's table ids: order of first use by the lookups."""
        return list(dict.fromkeys(lk["table"] for lk in self.description["lookups"]))


def write_collection(folder: Path, description: Path, snap: CollectionSnapshot) -> None:
    """``folder/embedding_collection_0`` (as ``embedding_dump(folder)`` writes it) and the
    description naming it. uint32 keys that a dynamic table outgrew are written as int64."""
    tables = [snap.tables[name] for name in snap.table_order()]
    key_type = snap.description.get("key_type", "int64")
    if key_type == "uint32" and any(k.size and (int(k.min()) < 0 or int(k.max()) >= 1 << 32)
                                    for k, _ in tables):
        key_type = "int64"
    write_embedding_dump(folder, tables, key_type=key_type)
    doc = dict(snap.description, key_type=key_type,
               dump_dir=f"{folder.name}/embedding_collection_0")
    description.write_text(json.dumps(doc, indent=1) + "\n")


def write_snapshot(directory, graph: Graph, graph_json: str, tables: list[dict], *,
                   prefix: str = "model", iteration: int = 0,
                   collection: CollectionSnapshot | None = None) -> Artifacts:
    """``{prefix}.json``, ``{prefix}_dense_{iteration}.model``, its ``.ntp.json`` (BatchNorm
    statistics, every float32 digit: HugeCTR's own %f would lose running variances below
    5e-7) and one folder ``{prefix}{i}_sparse_{iteration}.model`` per table (``key``,
    ``emb_vector``, ``slot_id`` when the table has ``slot_ids``). ``tables``: dicts with
    ``keys``, ``vectors`` and optionally ``slot_ids``, in the order of the embeddings that
    are not part of the embedding collection. ``collection``: also ``{prefix}_ebc_{iteration}/
    embedding_collection_0`` (``embedding_dump``'s format) and its description
    ``{prefix}_ebc_{iteration}.json`` (``Artifacts.embedding_collection``)."""
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
            ebc = ([f"{prefix}_ebc_{iteration}", f"{prefix}_ebc_{iteration}.json"]
                   if collection else [])
            if collection:
                write_collection(staging / ebc[0], staging / ebc[1], collection)
            for name in [graph_name, dense] + ([ntp] if has_ntp else []) + sparse + ebc:
                target = directory / name
                if target.is_dir():
                    shutil.rmtree(target)
                os.replace(staging / name, target)
        except OSError as e:
            raise OutputError(f"cannot write the HugeCTR files: {e.strerror or e}",
                              file=str(getattr(e, "filename", None) or directory))
    return Artifacts(graph_config=str(directory / graph_name), dense_model=str(directory / dense),
                     ntp_file=str(directory / ntp) if has_ntp else None,
                     sparse_models=[str(directory / n) for n in sparse],
                     embedding_collection=str(directory / ebc[1]) if ebc else None)

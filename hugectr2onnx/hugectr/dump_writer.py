"""Writer of ``Model.embedding_dump`` output and of collection description files.

Mirrors HugeCTR's ``EmbeddingParameterIO::dump_metadata`` / ``dump_embedding_weight``
(see embedding_collection.py for the layout). Used by the tests and by ``record``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .embedding_collection import FILE_HEAD_BYTES, KEY_FILE, WEIGHT_FILE

KEY_DTYPES = {"uint32": "<u4", "int64": "<i8"}


def shard_order(vocab: int, shards: int) -> np.ndarray:
    """The row order of a static table model-parallel over ``shards`` GPUs: shard s holds
    keys k with k % shards == s, and the dump concatenates the shards."""
    keys = np.arange(vocab, dtype=np.int64)
    return np.concatenate([keys[s::shards] for s in range(shards)]) if shards > 1 else keys


def _file_head(kind: int, j: int) -> bytes:
    head = np.zeros(FILE_HEAD_BYTES // 4, dtype="<i4")
    head[0], head[1] = kind, j
    return head.tobytes()


def write_embedding_dump(path, tables: list[tuple[np.ndarray, np.ndarray]], *,
                         key_type: str = "uint32", half_flag: bool = False,
                         table_ids: list[int] | None = None) -> Path:
    """``path/embedding_collection_0/`` from (keys, rows) per table, in table-id order.

    ``half_flag`` sets the fp16 value type flag (the payload stays float32, as in HugeCTR).
    ``table_ids`` writes the meta data of a subset dump while the files still hold
    tables 0..k-1, which is what HugeCTR does."""
    folder = Path(path) / "embedding_collection_0"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(tables)
    ids = list(range(n)) if table_ids is None else list(table_ids)
    counts = np.array([len(k) for k, _ in tables], dtype="<u8")
    sizes = np.array([np.asarray(v).shape[1] for _, v in tables], dtype="<i4")
    header = np.array([n, 1 if key_type == "int64" else 0, int(half_flag), 0, 0], dtype="<i4")
    meta = (header.tobytes() + np.asarray(ids, dtype="<i4").tobytes() + counts.tobytes()
            + sizes.tobytes())
    (folder / "meta_data").write_bytes(meta)
    for j, (keys, rows) in enumerate(tables):
        with open(folder / f"key{j}", "wb") as f:
            f.write(_file_head(KEY_FILE, j))
            f.write(np.ascontiguousarray(keys, dtype=KEY_DTYPES[key_type]).tobytes())
        with open(folder / f"weight{j}", "wb") as f:
            f.write(_file_head(WEIGHT_FILE, j))
            f.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    return folder


def write_description(path, *, dump_dir: str, tables: list[dict], lookups: list[dict],
                      layout: str = "batch_major", top: str | None = None,
                      key_type: str | None = None) -> Path:
    """A description file (docs/embedding_collection.md); ``dump_dir`` relative to it."""
    output = {"layout": layout}
    if top is not None:
        output["top"] = top
    doc = {"dump_dir": dump_dir, "output": output, "tables": tables, "lookups": lookups}
    if key_type is not None:
        doc["key_type"] = key_type
    path = Path(path)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path

"""Reader of ``Model.embedding_dump(path)`` output: ``path/embedding_collection_0/``.

Layout (HugeCTR ``embedding_storage/weight_io/parameter_IO.cpp``, checked at HEAD):

- ``meta_data``: int32[5] header (table count n, key type 0 = uint32 / 1 = int64, value
  type 0 = float / 1 = half, 0, 0), then int32[n] table ids (sorted), uint64[n] key counts,
  int32[n] vector sizes. No padding: the uint64 array starts at byte 20 + 4n, unaligned
  when n is even.
- ``key<j>`` / ``weight<j>``: a 128-byte header of int32 (1 = key, 2 = weight; then j),
  then the keys and the float32 rows. The payload is float32 even when the value type says
  half (``dump_by_id`` copies ``sizeof(float)`` per value). Rows come in shard order, not key
  order: lookups place them by key.
- ``dump_embedding_weight`` names the files after the loop index j, not the table id, so a
  dump of a subset of tables writes tables 0..k-1 under the subset's meta data. That dump is
  inconsistent in HugeCTR itself: we refuse it.

Everything is memory-mapped; nothing loops over keys in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SparseModelError
from ..ir import EmbeddingTable
from .files import existing_file, map_array

HEADER_INTS = 5
HEADER_BYTES = 4 * HEADER_INTS
FILE_HEAD_BYTES = 128  # FileHeadNbytes
KEY_FILE, WEIGHT_FILE = 1, 2  # EmbeddingFileType in the file heads
KEY_TYPES = {0: ("uint32", "<u4"), 1: ("int64", "<i8")}
VALUE_TYPES = {0: "float32", 1: "float16"}
MAX_TABLES = 1 << 20
MAX_EV_SIZE = 1 << 16


@dataclass
class MetaData:
    path: str
    key_type: str  # "uint32" | "int64"
    value_type: str  # "float32" | "float16" (the flag only: payloads are float32)
    table_ids: list[int]
    key_counts: list[int]
    ev_sizes: list[int]

    @property
    def num_tables(self) -> int:
        return len(self.table_ids)

    @property
    def key_dtype(self) -> str:
        return "<u4" if self.key_type == "uint32" else "<i8"


def _err(msg: str, path, offset: int) -> SparseModelError:
    return SparseModelError(msg, file=str(path), where=f"byte offset {offset}")


def read_meta_data(path) -> MetaData:
    path = existing_file(path, "embedding collection meta_data")
    raw = path.read_bytes()
    if len(raw) < HEADER_BYTES:
        raise _err(f"{len(raw)} bytes, shorter than the 20-byte header", path, len(raw))
    n, key_type, value_type = (int(v) for v in np.frombuffer(raw, "<i4", 3))
    if not 1 <= n <= MAX_TABLES:
        raise _err(f"table count {n} is outside [1, {MAX_TABLES}]", path, 0)
    if key_type not in KEY_TYPES:
        raise _err(f"key type {key_type} is neither 0 (uint32) nor 1 (int64)", path, 4)
    if value_type not in VALUE_TYPES:
        raise _err(f"value type {value_type} is neither 0 (float) nor 1 (half)", path, 8)
    want = HEADER_BYTES + 16 * n
    if len(raw) != want:
        raise _err(f"{len(raw)} bytes, but {n} tables take 20 + 16 x {n} = {want} bytes",
                   path, min(len(raw), want))
    ids_at = HEADER_BYTES
    counts_at = ids_at + 4 * n
    sizes_at = counts_at + 8 * n
    ids = np.frombuffer(raw, "<i4", n, ids_at)
    counts = np.frombuffer(raw, "<u8", n, counts_at)  # frombuffer reads unaligned data
    sizes = np.frombuffer(raw, "<i4", n, sizes_at)
    if (ids < 0).any():
        j = int(np.argmax(ids < 0))
        raise _err(f"table id {int(ids[j])} is negative", path, ids_at + 4 * j)
    if (np.diff(ids) <= 0).any():
        j = int(np.argmax(np.diff(ids) <= 0)) + 1
        raise _err(f"table ids {ids.tolist()[:20]} are not strictly increasing (HugeCTR "
                   f"writes them sorted)", path, ids_at + 4 * j)
    bad = (sizes < 1) | (sizes > MAX_EV_SIZE)
    if bad.any():
        j = int(np.argmax(bad))
        raise _err(f"vector size {int(sizes[j])} of table {int(ids[j])} is outside "
                   f"[1, {MAX_EV_SIZE}]", path, sizes_at + 4 * j)
    if (counts >= np.uint64(1 << 48)).any():
        j = int(np.argmax(counts >= np.uint64(1 << 48)))
        raise _err(f"key count {int(counts[j])} of table {int(ids[j])} is implausible",
                   path, counts_at + 8 * j)
    return MetaData(str(path), KEY_TYPES[key_type][0], VALUE_TYPES[value_type],
                    ids.tolist(), [int(c) for c in counts], sizes.tolist())


def check_complete(meta: MetaData) -> None:
    """The files hold tables 0..n-1 whatever the meta data says (see module doc)."""
    ids = meta.table_ids
    if ids != list(range(len(ids))):
        raise SparseModelError(
            f"meta_data lists table ids {ids[:20]}, a dump of a subset of the tables: "
            f"HugeCTR writes tables 0..{len(ids) - 1} into key0..key{len(ids) - 1} under that "
            f"meta data, so the dump is inconsistent in HugeCTR itself. Dump all tables "
            f"(model.embedding_dump(path) without table_names)", file=meta.path,
            where=f"byte offset {HEADER_BYTES}")


def _check_head(path: Path, kind: int, j: int) -> None:
    with open(path, "rb") as f:
        head = np.frombuffer(f.read(FILE_HEAD_BYTES), "<i4")
    if head.size < 2:
        raise _err("shorter than the 128-byte file header", path, 0)
    if int(head[0]) != kind:
        name = {KEY_FILE: "key", WEIGHT_FILE: "weight"}[kind]
        raise _err(f"file header says type {int(head[0])}, a {name} file has {kind}", path, 0)
    if int(head[1]) != j:
        raise _err(f"file header says table {int(head[1])}, the file name says {j}", path, 4)


def read_dump_table(folder, j: int, meta: MetaData) -> EmbeddingTable:
    """Table ``j`` of the dump, memory-mapped: keys (as stored: uint32 or int64) and rows."""
    folder = Path(folder)
    key_path = existing_file(folder / f"key{j}", f"keys of table {j}")
    weight_path = existing_file(folder / f"weight{j}", f"rows of table {j}")
    count, ev = meta.key_counts[j], meta.ev_sizes[j]
    key_bytes = np.dtype(meta.key_dtype).itemsize
    for path, kind, per_row, what in ((key_path, KEY_FILE, key_bytes, f"{meta.key_type} keys"),
                                      (weight_path, WEIGHT_FILE, 4 * ev,
                                       f"rows of {ev} float32")):
        size = path.stat().st_size
        want = FILE_HEAD_BYTES + count * per_row
        if size != want:
            hint = ""
            if kind == WEIGHT_FILE and size == FILE_HEAD_BYTES + count * 2 * ev:
                hint = " (that is 2 bytes per value; HugeCTR writes float32 even for fp16 runs)"
            elif size >= FILE_HEAD_BYTES and (size - FILE_HEAD_BYTES) % per_row == 0:
                hint = f" (it holds {(size - FILE_HEAD_BYTES) // per_row})"
            raise _err(f"{size} bytes, but meta_data gives {count} {what}: 128 + {count} x "
                       f"{per_row} = {want} bytes{hint}", path, min(size, want))
        _check_head(path, kind, j)
    keys = map_array(key_path, meta.key_dtype, (count,), f"keys of table {j}",
                     offset=FILE_HEAD_BYTES)
    rows = map_array(weight_path, "<f4", (count, ev), f"rows of table {j}",
                     offset=FILE_HEAD_BYTES)
    return EmbeddingTable(keys=keys, vectors=rows, source=str(key_path))


def check_static_keys(table: EmbeddingTable, vocab: int, name: str, key_bytes: int) -> None:
    """A static table's keys are its row indices: all in [0, vocab)."""
    keys = table.keys
    if keys.size == 0:
        return
    lo, hi = int(keys.min()), int(keys.max())
    if lo < 0 or hi >= vocab:
        bad = int(np.argmax((keys < 0) | (keys >= vocab)))
        raise _err(f"key {int(keys[bad])} of static table {name!r} is outside its "
                   f"vocabulary [0, {vocab})", table.source, FILE_HEAD_BYTES + bad * key_bytes)


def as_int64_table(table: EmbeddingTable) -> EmbeddingTable:
    """The IR keeps int64 keys: uint32 keys are widened (one copy of the keys only)."""
    if table.keys.dtype == np.int64 or table.keys.dtype == np.dtype("<i8"):
        return table
    return EmbeddingTable(keys=table.keys.astype(np.int64), vectors=table.vectors,
                          source=table.source)

"""Readers of trained embedding tables (FORMATS §5): the folder format and the legacy file.

Tables are memory-mapped, never read key by key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SparseModelError
from ..ir import Embedding, EmbeddingTable
from ..onnx_backend.external import drop_pages
from .files import existing_file, existing_path, map_array

KEY_TYPES = {"I64": 8, "I32": 4}
OPTIMIZER_STATES = {"Adam": 2, "Ftrl": 2, "AdaGrad": 1, "MomentumSGD": 1, "Nesterov": 1,
                    "RMSProp": 1, "SGD": 0}
MAX_GPUS = 1 << 16  # a GPU count recovered from the graph beyond this is a corrupt field
CHUNK_VALUES = 1 << 22  # values scanned at a time, so checks need little extra memory


def load_table(path, emb: Embedding, key_type: str = "I64") -> EmbeddingTable:
    """A folder (v3.1+) or a legacy single file (v3.0 and earlier), by what is on disk."""
    p = existing_path(path, f"sparse model of embedding #{emb.index}")
    if p.is_dir():
        table = read_folder(p, emb.vec_size, emb.localized)
    else:
        table = read_legacy_file(p, emb.vec_size, emb.localized, key_type)
    if table.slot_ids is not None:
        _check_slot_ids(table, emb)
    return table


def _check_slot_ids(table: EmbeddingTable, emb: Embedding) -> None:
    # HugeCTR stores a global slot index below slot_num (store_slot_id_functor.cu); a larger
    # one would silently move the key to another GPU's group.
    top = int(table.slot_ids.max())
    if top >= emb.slot_num:
        row = int(np.argmax(np.asarray(table.slot_ids) >= emb.slot_num))
        raise SparseModelError(f"slot id {top} at row {row}, but the embedding's input has "
                               f"{emb.slot_num} slots", file=table.source,
                               where=f"slot_id row {row}")


def count_nonfinite(vectors: np.ndarray) -> int:
    """NaN/Inf values of a (memory-mapped) table, scanned in chunks."""
    rows = max(1, CHUNK_VALUES // max(1, vectors.shape[1]))
    bad = 0
    for i in range(0, vectors.shape[0], rows):  # chunks of rows
        bad += int(vectors[i:i + rows].size - np.isfinite(vectors[i:i + rows]).sum())
        drop_pages(vectors)  # read pages of a memory map count in RSS until released
    return bad


def read_folder(folder: Path, vec_size: int, localized: bool) -> EmbeddingTable:
    key_file = existing_file(folder / "key", "embedding keys")
    vec_file = existing_file(folder / "emb_vector", "embedding vectors")
    key_bytes = key_file.stat().st_size
    vec_bytes = vec_file.stat().st_size
    if key_bytes % 8:
        raise SparseModelError(f"{key_bytes} bytes is not a whole number of int64 keys",
                               file=str(key_file), where=f"byte offset {key_bytes - key_bytes % 8}")
    k = key_bytes // 8
    if k == 0:
        raise SparseModelError("the table has no keys (an unfinished snapshot?)",
                               file=str(key_file))
    row = 4 * vec_size
    if vec_bytes != k * row:
        hint = ""
        if vec_bytes == k * 2 * vec_size:
            hint = "; that is 2 bytes per value: fp16 vectors? HugeCTR writes float32"
        elif vec_bytes % k == 0 and vec_bytes // k % 4 == 0:
            hint = (f"; it holds {vec_bytes // k // 4} floats per key, the graph says "
                    f"embedding_vec_size {vec_size}")
        raise SparseModelError(f"{vec_bytes} bytes, expected {k} keys x {vec_size} floats = "
                               f"{k * row} bytes{hint}", file=str(vec_file),
                               where=f"byte offset {min(vec_bytes, k * row)}")
    slot_ids = None
    slot_file = folder / "slot_id"
    if localized:
        existing_file(slot_file, "embedding slot ids")
        if slot_file.stat().st_size != 8 * k:
            raise SparseModelError(f"{slot_file.stat().st_size} bytes, expected {k} uint64 slot "
                                   f"ids = {8 * k} bytes", file=str(slot_file),
                                   where=f"byte offset {min(slot_file.stat().st_size, 8 * k)}")
        slot_ids = map_array(slot_file, "<u8", (k,), "embedding slot ids")
    return EmbeddingTable(keys=map_array(key_file, "<i8", (k,), "embedding keys"),
                          vectors=map_array(vec_file, "<f4", (k, vec_size), "embedding vectors"),
                          slot_ids=slot_ids, source=str(folder))


def read_legacy_file(path: Path, vec_size: int, localized: bool,
                     key_type: str = "I64") -> EmbeddingTable:
    if key_type not in KEY_TYPES:
        raise SparseModelError(f"key type must be one of {list(KEY_TYPES)}, found {key_type!r}",
                               file=str(path))
    key_bytes = KEY_TYPES[key_type]
    fields = [("key", "<u4" if key_bytes == 4 else "<i8")]
    if localized:
        fields.append(("slot_id", "<u8"))
    fields.append(("vec", "<f4", (vec_size,)))
    record = np.dtype(fields)
    size = path.stat().st_size
    if size % record.itemsize:
        raise SparseModelError(f"{size} bytes is not a whole number of {record.itemsize}-byte "
                               f"records ([{key_type} key]{'[slot_id]' if localized else ''}"
                               f"[{vec_size} floats]); check key_type and embedding_vec_size",
                               file=str(path), where=f"byte offset {size - size % record.itemsize}")
    k = size // record.itemsize
    if k == 0:
        raise SparseModelError("the table has no keys (an unfinished snapshot?)", file=str(path))
    rec = map_array(path, record, (k,), "sparse model")
    keys = rec["key"].astype(np.int64)  # zero-extends uint32 keys
    return EmbeddingTable(keys=keys, vectors=rec["vec"],
                          slot_ids=np.asarray(rec["slot_id"]) if localized else None,
                          source=str(path))


def gpu_count(emb: Embedding) -> int | None:
    """Total GPUs of the training run: a hand-written config's ``solver.gpu`` list, else
    recovered from the vocabulary formula (FORMATS §2.4)."""
    if emb.solver_gpus:
        return emb.solver_gpus
    states = OPTIMIZER_STATES.get(emb.optimizer)
    if states is None or not emb.workspace_size_per_gpu_in_mb or not emb.max_vocabulary_size_global:
        return None
    if emb.optimizer == "Adam" and emb.update_type == "LazyGlobal":
        states = 3
    per_gpu = emb.workspace_size_per_gpu_in_mb * 2 ** 20 // ((1 + states) * 4 * emb.vec_size)
    if per_gpu <= 0 or emb.max_vocabulary_size_global % per_gpu:
        return None
    gpus = emb.max_vocabulary_size_global // per_gpu
    return gpus if gpus <= MAX_GPUS else None


def check_keys(table: EmbeddingTable, emb: Embedding, num_gpus: int | None) -> int:
    """Reject duplicate keys that no slot_id can tell apart; returns the GPU count to use (1 if
    keys are unique)."""
    sk = np.array(table.keys, dtype=np.int64)  # one copy, sorted in place: no argsort
    drop_pages(table.keys)
    sk.sort()
    if not (sk[1:] == sk[:-1]).any():
        return 1
    del sk
    # duplicates are the rare case: only now pay for an argsort to name the rows
    order = np.argsort(table.keys, kind="stable")
    sk = table.keys[order]
    dup = np.flatnonzero(sk[1:] == sk[:-1])
    first = int(sk[dup[0]])
    rows = order[dup[0]:dup[0] + 2]
    if not emb.localized:
        raise SparseModelError(f"key {first} appears more than once (rows {rows[0]} and "
                               f"{rows[1]}); a Distributed table holds each key once",
                               file=table.source, where=f"key row {rows[1]}")
    gpus = num_gpus or gpu_count(emb)
    if not gpus:
        raise SparseModelError("keys repeat across GPUs but the GPU count cannot be recovered "
                               "from the graph (no solver.gpu list, no vocabulary sizes); pass num_gpus", file=table.source)
    group = (table.slot_ids % np.uint64(gpus)).astype(np.int64)
    pair = np.lexsort((group, table.keys))
    same = (table.keys[pair][1:] == table.keys[pair][:-1]) & (group[pair][1:] == group[pair][:-1])
    if same.any():
        i = int(np.flatnonzero(same)[0])
        raise SparseModelError(f"key {int(table.keys[pair][i])} appears twice for GPU "
                               f"{int(group[pair][i])} of {gpus} (rows {pair[i]} and "
                               f"{pair[i + 1]})", file=table.source, where=f"key row {pair[i + 1]}")
    return gpus

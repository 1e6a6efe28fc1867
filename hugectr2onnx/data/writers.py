"""Writers of HugeCTR's dataset formats (HUGECTR_FORMATS 6), the inverse of the readers.

Samples come as arrays: ``labels`` [N, label_dim], ``dense`` [N, dense_dim] and one
``keys`` array [N, slot_num, max_nnz] per key input of the layout. For variable-length
slots ``nnz`` (one [N, slot_num] array per input) says how many leading keys each slot has;
by default the entries equal to ``layout.padding_key`` are the absent ones. Files are
written atomically, in chunks of samples (memory does not grow with the dataset).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .layout import DataLayout
from .norm import HEADER, HEADER_BYTES
from .raw import raw_dtype, rawasync_dtype

CHUNK = 1 << 16  # samples per write


def _nnz(layout: DataLayout, keys, nnz) -> list[np.ndarray]:
    if nnz is not None:
        return [np.asarray(n, np.int64) for n in nnz]
    return [(np.asarray(k) != layout.padding_key).sum(axis=2) for k in keys]


def write_file_list(path, files) -> None:
    """HugeCTR's file list: the count, then one path per line."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(f"{len(files)}\n" + "".join(f"{f}\n" for f in files))


def write_norm(path, layout: DataLayout, labels, dense, keys, *, nnz=None,
               checksum: bool = False) -> None:
    """A Norm file (checksum-framed with ``checksum``), keys of ``layout.key_type``."""
    labels, dense = np.asarray(labels, np.float32), np.asarray(dense, np.float32)
    n = labels.shape[0]
    counts = np.concatenate(_nnz(layout, keys, nnz), axis=1) if layout.sparse else \
        np.zeros((n, 0), np.int64)
    slots = [k[:, j, :] for k in keys for j in range(k.shape[1])]
    head = np.zeros(1, HEADER)
    head["error_check"], head["number_of_records"] = int(checksum), n
    head["label_dim"], head["dense_dim"] = labels.shape[1], dense.shape[1]
    head["slot_num"] = counts.shape[1]
    hb = head.view(np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if checksum:
            f.write(np.int32(HEADER_BYTES).tobytes() + hb.tobytes()
                    + np.uint8(int(hb.astype(np.int64).sum()) & 0xFF).tobytes())
        else:
            f.write(hb.tobytes())
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            f.write(_norm_records(layout, np.concatenate([labels[lo:hi], dense[lo:hi]], axis=1),
                                  [s[lo:hi] for s in slots], counts[lo:hi], checksum).tobytes())


def _norm_records(layout, values, slots, counts, checksum) -> np.ndarray:
    n, width = values.shape
    kb = layout.key_bytes
    payload = 4 * width + 4 * counts.shape[1] + kb * counts.sum(axis=1)
    size = payload + (5 if checksum else 0)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    buf = np.zeros(int(size.sum()), np.uint8)
    p = starts + (4 if checksum else 0)
    if checksum:
        _put(buf, starts, payload.astype("<i4"))
    _put(buf, p, values.astype("<f4"))
    p = p + 4 * width
    key_dtype = "<u4" if kb == 4 else "<i8"
    for s, k in enumerate(slots):
        _put(buf, p, counts[:, s].astype("<i4"))
        p = p + 4
        m = int(counts[:, s].max()) if n else 0
        if m:
            present = np.arange(m) < counts[:, s, None]
            kbytes = np.ascontiguousarray(k[:, :m].astype(np.int64).astype(key_dtype)) \
                .view(np.uint8).reshape(n, m, kb)
            idx = p[:, None, None] + (kb * np.arange(m))[None, :, None] + np.arange(kb)
            buf[idx[present]] = kbytes[present]
        p = p + kb * counts[:, s]
    if checksum:
        cum = np.concatenate([[0], np.cumsum(buf, dtype=np.int64)])
        body = starts + 4
        buf[body + payload] = ((cum[body + payload] - cum[body]) & 0xFF).astype(np.uint8)
    return buf


def _put(buf: np.ndarray, pos: np.ndarray, values: np.ndarray) -> None:
    """Write row i of ``values`` (as bytes) at byte ``pos[i]``."""
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(pos.size, -1)
    buf[pos[:, None] + np.arange(raw.shape[1])] = raw


def write_raw(path, layout: DataLayout, labels, dense, keys, *,
              float_label_dense: bool = False) -> None:
    """A one-hot Raw file: label and dense words (int32 unless ``float_label_dense``: pass
    the integer values, not their ln(x+1)), then each slot's first key as a 32-bit word."""
    dtype = raw_dtype(layout, float_label_dense)
    word = np.float32 if float_label_dense else np.int32
    flat = np.concatenate([k[:, :, 0] for k in keys], axis=1) if keys else \
        np.zeros((len(labels), 0), np.int64)

    def fill(rec, lo, hi):
        rec["labels"] = np.asarray(labels[lo:hi]).astype(word)
        rec["dense"] = np.asarray(dense[lo:hi]).astype(word)
        rec["keys"] = flat[lo:hi].astype(np.int64).astype(np.uint32)
    _write_fixed(path, dtype, len(labels), fill)


def write_rawasync(path, layout: DataLayout, labels, dense, keys, *,
                   dense_float: bool = False) -> None:
    """A RawAsync file: int32 labels, dense words, ``nnz_per_slot[s]`` keys per slot."""
    dtype = rawasync_dtype(layout, dense_float)
    slots = [(inp, k[:, j, :n]) for inp, k in zip(layout.sparse, keys)
             for j, n in enumerate(inp.nnz_per_slot)]
    key = np.uint32 if layout.key_type == "I32" else np.int64

    def fill(rec, lo, hi):
        rec["labels"] = np.asarray(labels[lo:hi]).astype(np.int32)
        rec["dense"] = np.asarray(dense[lo:hi]).astype(np.float32 if dense_float else np.int32)
        for s, (_, k) in enumerate(slots):
            rec[f"k{s}"] = k[lo:hi].astype(np.int64).astype(key)
    _write_fixed(path, dtype, len(labels), fill)


def _write_fixed(path, dtype, n, fill) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            rec = np.zeros(hi - lo, dtype)
            fill(rec, lo, hi)
            f.write(rec.tobytes())


def write_parquet(directory, layout: DataLayout, labels, dense, keys, *, nnz=None,
                  files: int = 1, list_columns: bool | None = None,
                  row_group_size: int = 1 << 16) -> Path:
    """A Parquet dataset as NVTabular writes it for HugeCTR: ``files`` part files, their
    ``_file_list.txt`` and ``_metadata.json``; columns label*, I*, C* (keys as stored: any
    ``slot_size_array`` offset is the reader's to add). Slots of inputs with more than one
    key per slot (or all, with ``list_columns``) are list columns. Returns the file list."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    labels = None if labels is None else np.asarray(labels, np.float32)
    dense = np.asarray(dense, np.float32)
    n = dense.shape[0]
    counts = _nnz(layout, keys, nnz)
    key_type = pa.uint32() if layout.key_type == "I32" else pa.int64()
    key_np = np.uint32 if layout.key_type == "I32" else np.int64
    cols, names, meta = [], [], {"labels": [], "conts": [], "cats": []}

    def add(group, name, array):
        meta[group].append({"col_name": name, "index": len(names)})
        names.append(name)
        cols.append(array)

    for j in range(0 if labels is None else labels.shape[1]):
        add("labels", f"label{j}", labels[:, j])
    for j in range(dense.shape[1]):
        add("conts", f"I{j + 1}", dense[:, j])
    c = 0
    for inp, k, cnt in zip(layout.sparse, keys, counts):
        as_list = inp.max_nnz > 1 if list_columns is None else list_columns
        for j in range(inp.slot_num):
            c += 1
            if as_list:
                present = np.arange(k.shape[2]) < cnt[:, j, None]
                add("cats", f"C{c}", ("list", k[:, j, :][present].astype(key_np), cnt[:, j]))
            else:
                add("cats", f"C{c}", k[:, j, 0].astype(key_np))
    bounds = np.linspace(0, n, files + 1).astype(int)
    written, stats = [], []
    for f in range(files):
        lo, hi = int(bounds[f]), int(bounds[f + 1])
        arrays = [_arrow_column(pa, col, lo, hi, key_type) for col in cols]
        table = pa.Table.from_arrays(arrays, names=names)
        part = directory / f"part_{f}.parquet"
        with atomic_path(part) as tmp:
            pq.write_table(table, tmp, row_group_size=row_group_size)
        written.append(str(part))
        stats.append({"file_name": part.name, "num_rows": hi - lo})
    with atomic_path(directory / "_metadata.json") as tmp:
        Path(tmp).write_text(json.dumps({"file_stats": stats, **meta}, indent=1))
    file_list = directory / "_file_list.txt"
    write_file_list(file_list, written)
    return file_list


def _arrow_column(pa, col, lo, hi, key_type):
    if isinstance(col, tuple):
        _, values, counts = col
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        sub = values[offsets[lo]:offsets[hi]]
        return pa.ListArray.from_arrays(pa.array(offsets[lo:hi + 1] - offsets[lo]),
                                        pa.array(sub, type=key_type))
    if col.dtype.kind == "f":
        return pa.array(col[lo:hi])
    return pa.array(col[lo:hi], type=key_type)

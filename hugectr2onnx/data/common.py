"""Pieces shared by the dataset readers: decoded chunks, batching across files, file lists,
memory maps that give their pages back once read."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import DatasetError, InputFileError
from .layout import DataLayout

PAGE = mmap.PAGESIZE


@dataclass
class Chunk:
    """Consecutive decoded samples: labels [n, label_dim] (None when the data has none),
    dense [n, dense_dim] float32, one int64 key array [n, slot_num, max_nnz] per key input."""

    labels: np.ndarray | None
    dense: np.ndarray
    keys: list[np.ndarray]

    def __len__(self) -> int:
        return int(self.dense.shape[0])

    def take(self, lo: int, hi: int) -> "Chunk":
        return Chunk(None if self.labels is None else self.labels[lo:hi], self.dense[lo:hi],
                     [k[lo:hi] for k in self.keys])


@dataclass
class Batch:
    """One batch: ``inputs`` is the model's feed dict, ``labels`` one [n, dim] float32 array
    per label name (None when the data has no labels), ``start`` the index of its first
    sample in the dataset."""

    inputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] | None
    start: int

    def __len__(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])


def _concat(chunks: list[Chunk]) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    labels = (None if any(c.labels is None for c in chunks)
              else np.concatenate([c.labels for c in chunks]))
    return Chunk(labels, np.concatenate([c.dense for c in chunks]),
                 [np.concatenate(parts) for parts in zip(*(c.keys for c in chunks))])


def rebatch(chunks: Iterable[Chunk], layout: DataLayout, batch_size: int,
            num_samples: int | None = None) -> Iterator[Batch]:
    """Batches of ``batch_size`` consecutive samples, running across chunk (and file)
    boundaries as HugeCTR's readers do; the last batch may be smaller."""
    pending: list[Chunk] = []
    have = 0
    start = 0
    limit = num_samples if num_samples is not None else -1

    def emit(chunk: Chunk) -> Batch:
        inputs = {layout.dense_name: chunk.dense}
        inputs.update((s.name, k) for s, k in zip(layout.sparse, chunk.keys))
        labels = None if chunk.labels is None else layout.split_labels(chunk.labels)
        return Batch(inputs, labels, start)

    for chunk in chunks:
        if limit >= 0 and start + have + len(chunk) > limit:
            chunk = chunk.take(0, max(0, limit - start - have))
        if len(chunk) == 0:
            if limit >= 0 and start + have >= limit:
                break
            continue
        pending.append(chunk)
        have += len(chunk)
        while have >= batch_size:
            whole = _concat(pending)
            yield emit(whole.take(0, batch_size))
            start += batch_size
            rest = whole.take(batch_size, len(whole))
            pending, have = ([rest], len(rest)) if len(rest) else ([], 0)
        if limit >= 0 and start + have >= limit:
            break
    if have:
        yield emit(_concat(pending))


# --------------------------------------------------------------------------- files
def read_file_list(path) -> list[str]:
    """HugeCTR's file list: the number of files N, then N paths (extra lines ignored).
    Relative paths that do not exist from the working directory are taken relative to the
    list's own directory."""
    path = Path(path)
    text = _read_text(path)
    lines = [l.strip() for l in text.splitlines()]
    try:
        count = int(lines[0])
    except (IndexError, ValueError):
        raise DatasetError("the first line must be the number of files", file=str(path),
                           where="line 1") from None
    names = [l for l in lines[1:] if l][:count] if count >= 0 else []
    if count < 0 or len(names) < count:
        raise DatasetError(f"lists {count} files but names {len(names)}", file=str(path),
                           where="file count")
    out = []
    for name in names:
        p = Path(name)
        if not p.is_absolute() and not p.exists() and (path.parent / p).exists():
            p = path.parent / p
        out.append(str(p))
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InputFileError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InputFileError("is a directory, expected a file", file=str(path)) from None
    except UnicodeDecodeError:
        raise DatasetError("not a text file list", file=str(path)) from None
    except OSError as e:
        raise InputFileError(f"cannot read: {e.strerror or e}", file=str(path)) from None


def is_file_list(path) -> bool:
    """A text file whose first line is a count (a binary data file never starts so)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return False
    if any(b < 32 and b not in b"\t\r\n" for b in head):  # binary data, not text
        return False
    first = head.split(b"\n", 1)[0].strip()
    return bool(first) and first.isdigit() and (b"\n" in head or len(head) < 32)


def data_files(source) -> list[str]:
    """``source``: a data file, a HugeCTR file list, or a list of data files."""
    if isinstance(source, (list, tuple)):
        files = [str(s) for s in source]
    elif is_file_list(source):
        files = read_file_list(source)
    else:
        files = [str(source)]
    for f in files:
        check_readable(f)
    if not files:
        raise DatasetError("no data files", file=str(source))
    return files


def check_readable(path) -> None:
    p = Path(path)
    if not p.exists():
        raise InputFileError("file not found", file=str(p))
    if p.is_dir():
        raise InputFileError("is a directory, expected a file", file=str(p))
    if not os.access(p, os.R_OK):
        raise InputFileError("not readable", file=str(p))


class MappedFile:
    """A read-only memory map of a whole file as uint8 (``buf``). ``release(upto)`` hands
    pages already decoded back to the kernel, so resident memory does not grow with the
    file (decoded arrays are always copies)."""

    def __init__(self, path):
        self.path = str(path)
        self.size = os.path.getsize(self.path)
        self._released = 0
        self._map = None
        if self.size == 0:
            self.buf = np.zeros(0, np.uint8)
            return
        with open(self.path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(self._map, "madvise"):
            self._map.madvise(mmap.MADV_SEQUENTIAL)
        self.buf = np.frombuffer(self._map, np.uint8)

    def release(self, upto: int) -> None:
        end = (min(upto, self.size) // PAGE) * PAGE
        if self._map is not None and end > self._released and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end

    def close(self) -> None:
        self.buf = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view is still alive; the GC closes it
                pass
            self._map = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- decoding
def int_dense(values: np.ndarray) -> np.ndarray:
    """HugeCTR's transform of int32 dense features: ln(x + 1), as float32."""
    with np.errstate(invalid="ignore", divide="ignore"):  # x <= -1 gives NaN/-inf, as in HugeCTR
        return np.log(values.astype(np.float32) + np.float32(1.0))  # logf(x + 1.f)


def widen_keys(keys: np.ndarray, key_type: str) -> np.ndarray:
    """Stored keys as the model's int64: 32-bit keys of I32 runs are zero-extended."""
    if keys.dtype.itemsize == 4:
        return keys.view(np.uint32).astype(np.int64)
    return keys.astype(np.int64, copy=False)


def pad_keys(per_slot: list[np.ndarray], layout_slots, pad: int) -> np.ndarray:
    """Fixed-count key arrays [n, nnz_s] of each slot -> [n, slot_num, max_nnz]."""
    n = per_slot[0].shape[0] if per_slot else 0
    out = np.full((n, layout_slots.slot_num, layout_slots.max_nnz), pad, np.int64)
    for s, k in enumerate(per_slot):
        out[:, s, :k.shape[1]] = k
    return out

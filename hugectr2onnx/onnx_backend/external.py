"""Streamed external data: big tensors go into one ``<model>.onnx.data`` file.

Embedding tables are copied from the HugeCTR files into that file with kernel copies or
sequential reads into one reusable buffer, so memory stays bounded whatever the table
size; no TensorProto ever holds their bytes. Offsets are aligned so ONNX Runtime can
memory-map each tensor.
"""

from __future__ import annotations

import mmap
import os

import numpy as np
from onnx import TensorProto, helper

CHUNK = 16 << 20  # bytes per read/write: large enough for full disk speed
PAGE_ALIGN = 4096  # Linux page size
BIG_ALIGN = 65536  # Windows allocation granularity, for tensors of at least BIG_TENSOR
BIG_TENSOR = 1 << 20


def alignment(nbytes: int) -> int:
    return BIG_ALIGN if nbytes >= BIG_TENSOR else PAGE_ALIGN


class Cancelled(Exception):
    """A copy stopped on request (the conversion failed or was interrupted meanwhile)."""


class LazyTensor:
    """A tensor whose bytes are produced only when written (or when asked as an array)."""

    dtype: np.dtype
    shape: tuple

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def write(self, out: "DataFile") -> None:
        raise NotImplementedError

    def __array__(self, dtype=None, copy=None):
        raise NotImplementedError


class ZeroRowTable(LazyTensor):
    """An embedding table with the all-zero row 0 (missing keys) in front of its rows."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        self.dtype = np.dtype("<f4")
        self.shape = (int(vectors.shape[0]) + 1, int(vectors.shape[1]))

    def write(self, out: "DataFile") -> None:
        out.write_bytes(bytes(self.shape[1] * self.dtype.itemsize))
        out.write_array(self.vectors)

    def __array__(self, dtype=None, copy=None):
        table = np.zeros(self.shape, dtype=self.dtype)
        table[1:] = self.vectors
        drop_pages(self.vectors)
        return table if dtype is None else table.astype(dtype)


class Lanes(LazyTensor):
    """``lanes`` copies of a 1-D index array stacked as [lanes, N]: ONNX Runtime runs a
    GatherElements over axis 1 on one thread per lane (docs/lookup.md). Written by
    repeating the array, never stacked in memory."""

    def __init__(self, array: np.ndarray, lanes: int):
        self.array = np.asarray(array)
        self.lanes = lanes
        self.dtype = self.array.dtype
        self.shape = (lanes,) + self.array.shape

    def write(self, out: "DataFile") -> None:
        for _ in range(self.lanes):
            out.write_array(self.array)

    def __array__(self, dtype=None, copy=None):
        stacked = np.broadcast_to(self.array, self.shape).copy()
        return stacked if dtype is None else stacked.astype(dtype)


class SlotOrderTable(LazyTensor):
    """An embedding table laid out in a hash index's slot order: row ``j`` is trained row
    ``source[j]`` (1-based; 0 gives zeros). The lookup then reads no slot -> row array.
    Writing gathers rows in random order, so the table's pages become resident."""

    def __init__(self, vectors: np.ndarray, source: np.ndarray):
        self.vectors = vectors
        self.source = np.asarray(source)
        self.dtype = np.dtype("<f4")
        self.shape = (int(self.source.size), int(vectors.shape[1]))

    def _rows(self, start: int, stop: int) -> np.ndarray:
        src = self.source[start:stop]
        if self.vectors.shape[0] == 0:
            return np.zeros((src.size, self.shape[1]), self.dtype)
        block = np.asarray(np.take(self.vectors, np.maximum(src, 1) - 1, axis=0))
        if block.dtype != self.dtype:
            block = block.astype(self.dtype)
        block[src == 0] = 0
        return block

    def write(self, out: "DataFile") -> None:
        step = max(1, CHUNK // max(1, self.shape[1] * self.dtype.itemsize))
        for start in range(0, self.shape[0], step):  # chunks of rows, not a loop over rows
            out.write_bytes(self._rows(start, start + step))
        drop_pages(self.vectors)

    def __array__(self, dtype=None, copy=None):
        table = self._rows(0, self.shape[0])
        drop_pages(self.vectors)
        return table if dtype is None else table.astype(dtype)


def file_region(arr: np.ndarray):
    """(path, byte offset, length) when ``arr`` is a contiguous memory map of a file."""
    mm = getattr(arr, "_mmap", None)
    if not isinstance(arr, np.memmap) or mm is None or not arr.filename:
        return None
    if not arr.flags.c_contiguous or arr.dtype.byteorder == ">":
        return None
    base = np.frombuffer(mm, dtype=np.uint8)
    start = arr.offset - arr.offset % mmap.ALLOCATIONGRANULARITY  # where np.memmap maps from
    offset = start + (arr.ctypes.data - base.ctypes.data)
    del base
    return os.fspath(arr.filename), offset, arr.nbytes


def drop_pages(arr: np.ndarray) -> None:
    """Unmap the pages of a memory map that were read, so they stop counting in RSS."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


class DataFile:
    """Appends tensors to an open file descriptor at aligned offsets."""

    def __init__(self, fd: int, location: str, progress=None, kernel_copy: bool = True,
                 cancel=None):
        self.fd = fd
        self.cancel = cancel  # a threading.Event: set, the next chunk raises Cancelled
        self.location = location
        self.pos = 0
        self.progress = progress
        self.kernel_copy = kernel_copy
        self._buffer: bytearray | None = None

    def add(self, name: str, tensor) -> TensorProto:
        """Write ``tensor`` (array or LazyTensor); returns its external TensorProto."""
        if not isinstance(tensor, LazyTensor):
            tensor = np.asarray(tensor)
        nbytes = int(tensor.nbytes)
        start = -(-self.pos // alignment(nbytes)) * alignment(nbytes)
        if start != self.pos:
            os.lseek(self.fd, start, os.SEEK_SET)  # the gap is a hole that reads as zeros
            self.pos = start
        if isinstance(tensor, LazyTensor):
            tensor.write(self)
        else:
            self.write_array(tensor)
        if self.pos - start != nbytes:
            raise RuntimeError(f"{name}: wrote {self.pos - start} bytes, expected {nbytes}")
        proto = TensorProto(name=name, dims=list(tensor.shape),
                            data_type=helper.np_dtype_to_tensor_dtype(tensor.dtype))
        proto.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", start), ("length", nbytes)):
            entry = proto.external_data.add()
            entry.key, entry.value = key, str(value)
        return proto

    def finish(self) -> None:
        os.ftruncate(self.fd, self.pos)  # a trailing hole would otherwise be missing

    # ------------------------------------------------------------------
    def write_bytes(self, data) -> None:
        view = memoryview(data).cast("B")
        while view.nbytes:
            n = os.write(self.fd, view[:CHUNK])
            view = view[n:]
            self.pos += n
            self._tick(n)

    def write_array(self, arr: np.ndarray) -> None:
        """Row-major little-endian bytes of ``arr``, in bounded pieces."""
        region = file_region(arr)
        if region is not None:
            self._copy_region(*region)
            return
        if arr.ndim == 0 or arr.nbytes <= CHUNK:
            self.write_bytes(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")))
            drop_pages(arr)
            return
        rows = max(1, CHUNK // max(1, arr[0].nbytes))
        for i in range(0, arr.shape[0], rows):  # chunks of rows, not a loop over rows
            self.write_bytes(np.ascontiguousarray(arr[i:i + rows],
                                                  dtype=arr.dtype.newbyteorder("<")))
            drop_pages(arr)

    def _copy_region(self, path: str, offset: int, length: int) -> None:
        with open(path, "rb", buffering=0) as src:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(src.fileno(), offset, length, os.POSIX_FADV_SEQUENTIAL)
            done = self._kernel_copy(src.fileno(), offset, length) if self.kernel_copy else 0
            if done < length:
                self._buffered_copy(src, offset + done, length - done)

    def _kernel_copy(self, src: int, offset: int, length: int) -> int:
        """copy_file_range: no bytes pass through this process. 0 where unsupported."""
        copy = getattr(os, "copy_file_range", None)
        done = 0
        if copy is None:
            return 0
        while done < length:
            try:
                n = copy(src, self.fd, min(CHUNK * 4, length - done), offset + done)
            except OSError:
                os.lseek(self.fd, self.pos, os.SEEK_SET)
                return done
            if n == 0:
                raise OSError(f"source file ended {length - done} bytes early")
            done += n
            self.pos += n
            self._tick(n)
        return done

    def _buffered_copy(self, src, offset: int, length: int) -> None:
        if self._buffer is None:
            self._buffer = bytearray(CHUNK)
        view = memoryview(self._buffer)
        src.seek(offset)
        while length:
            n = src.readinto(view[:min(CHUNK, length)])
            if not n:
                raise OSError(f"source file ended {length} bytes early")
            self.write_bytes(view[:n])
            length -= n

    def _tick(self, n: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        if self.progress is not None:
            self.progress.update(n)

"""Raw and RawAsync data files (HUGECTR_FORMATS 6.2, 6.3): fixed-size samples of 32-bit
words, no header. Decoded as one structured view per chunk."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import DatasetError
from .common import Chunk, MappedFile, int_dense, pad_keys, widen_keys
from .layout import DataLayout


def raw_dtype(layout: DataLayout, float_label_dense: bool) -> np.dtype:
    """One-hot Raw sample: label+dense words, then one 32-bit key per slot."""
    word = "<f4" if float_label_dense else "<i4"
    return np.dtype([("labels", word, (layout.label_dim,)), ("dense", word, (layout.dense_dim,)),
                     ("keys", "<u4", (layout.slot_num,))])


def rawasync_dtype(layout: DataLayout, dense_float: bool) -> np.dtype:
    """Multi-hot RawAsync sample: int32 labels, dense words, then ``nnz_per_slot[s]`` keys
    per slot of the training key width."""
    fields = [("labels", "<i4", (layout.label_dim,)),
              ("dense", "<f4" if dense_float else "<i4", (layout.dense_dim,))]
    key = "<u4" if layout.key_type == "I32" else "<i8"
    s = 0
    for inp in layout.sparse:
        for n in inp.nnz_per_slot:
            fields.append((f"k{s}", key, (n,)))
            s += 1
    return np.dtype(fields)


class FixedFile:
    """A file of fixed-size samples; ``decode(recs)`` turns a structured slice into a Chunk."""

    def __init__(self, path, dtype: np.dtype, fmt: str):
        self.m = MappedFile(path)
        self.path = self.m.path
        self.dtype = dtype
        self.count, rest = divmod(self.m.size, dtype.itemsize)
        if rest:
            raise DatasetError(f"{self.m.size} bytes is not a whole number of {fmt} samples of "
                               f"{dtype.itemsize} bytes: the last one is truncated, or the "
                               "file does not fit the model (label_dim + dense_dim, slots, "
                               "key width)",
                               file=self.path,
                               where=f"record {self.count} (byte {self.count * dtype.itemsize})")

    def slices(self, chunk_samples: int) -> Iterator[tuple[int, np.ndarray]]:
        try:
            for lo in range(0, self.count, chunk_samples):
                n = min(chunk_samples, self.count - lo)
                yield lo, np.ndarray((n,), self.dtype, self.m.buf, lo * self.dtype.itemsize)
                self.m.release((lo + n) * self.dtype.itemsize)
        finally:
            self.m.close()


def _labels_dense(recs, int_labels: bool, float_dense: bool):
    labels = np.array(recs["labels"], np.float32)  # int32 labels are taken as-is
    dense = np.array(recs["dense"], np.float32) if float_dense else int_dense(recs["dense"])
    return labels, dense


def read_raw(files: list[str], layout: DataLayout, chunk_samples: int,
             float_label_dense: bool = False) -> Iterator[Chunk]:
    """One-hot Raw: each slot's single key goes to position 0, the rest is padding. Keys are
    32-bit words: zero-extended for I32 models, sign-extended for I64 ones."""
    dtype = raw_dtype(layout, float_label_dense)
    for path in files:
        for _, recs in FixedFile(path, dtype, "Raw").slices(chunk_samples):
            labels, dense = _labels_dense(recs, not float_label_dense, float_label_dense)
            words = recs["keys"]
            keys = words.astype(np.int64) if layout.key_type == "I32" else \
                words.view(np.int32).astype(np.int64)
            out, s = [], 0
            for inp in layout.sparse:
                part = np.full((keys.shape[0], inp.slot_num, inp.max_nnz), layout.padding_key,
                               np.int64)
                part[:, :, 0] = keys[:, s:s + inp.slot_num]
                out.append(part)
                s += inp.slot_num
            yield Chunk(labels, dense, out)


def read_rawasync(files: list[str], layout: DataLayout, chunk_samples: int,
                  dense_float: bool = False) -> Iterator[Chunk]:
    dtype = rawasync_dtype(layout, dense_float)
    for path in files:
        for _, recs in FixedFile(path, dtype, "RawAsync").slices(chunk_samples):
            labels, dense = _labels_dense(recs, True, dense_float)
            out, s = [], 0
            for inp in layout.sparse:
                per_slot = [widen_keys(recs[f"k{s + j}"], layout.key_type)
                            for j in range(inp.slot_num)]
                out.append(pad_keys(per_slot, inp, layout.padding_key))
                s += inp.slot_num
            yield Chunk(labels, dense, out)

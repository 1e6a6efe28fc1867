"""HugeCTR datasets (HUGECTR_FORMATS 6): readers yielding the model's feed dicts, writers.

>>> layout = DataLayout.from_onnx("model.onnx")          # or DataLayout.from_data_input(graph.data)
>>> for batch in open_dataset("file_list.txt", "norm", layout, batch_size=4096):
...     outputs = session.run(None, batch.inputs); batch.labels

Batches are consecutive samples and run across file boundaries, as HugeCTR's readers do.
Every malformed file ends in one ``DatasetError`` naming the file and the record, row,
column or field.
"""

from __future__ import annotations

from typing import Iterator

from ..errors import UsageError
from .common import Batch, Chunk, data_files, read_file_list, rebatch
from .layout import DataLayout, SparseSlots

FORMATS = ("norm", "raw", "rawasync", "parquet")

__all__ = ["FORMATS", "Batch", "Chunk", "DataLayout", "SparseSlots", "count_samples",
           "open_dataset", "read_chunks", "read_file_list"]


def read_chunks(source, fmt: str, layout: DataLayout, *, chunk_samples: int = 4096,
                float_label_dense: bool = False) -> Iterator[Chunk]:
    """Decoded chunks of consecutive samples in file order (sizes vary; see rebatch)."""
    if fmt == "norm":
        from .norm import read_norm
        return read_norm(data_files(source), layout, chunk_samples)
    if fmt == "raw":
        from .raw import read_raw
        return read_raw(data_files(source), layout, chunk_samples, float_label_dense)
    if fmt == "rawasync":
        from .raw import read_rawasync
        return read_rawasync(data_files(source), layout, chunk_samples, float_label_dense)
    if fmt == "parquet":
        from .parquet import read_parquet
        return read_parquet(source, layout, chunk_samples)
    raise UsageError(f"format must be one of {list(FORMATS)}, found {fmt!r}")


def open_dataset(source, fmt: str, layout: DataLayout, batch_size: int = 4096, *,
                 num_samples: int | None = None, float_label_dense: bool = False) -> Iterator[Batch]:
    """Batches of a HugeCTR dataset as ``Batch(inputs, labels, start)``.

    ``source``: a Norm file list or data file; a Raw/RawAsync data file (or file list);
    for Parquet the ``_file_list.txt`` (or its directory). A list of data files works for
    every format. ``layout`` gives the split of labels, dense values and slots, the key
    type, padding key and Parquet ``slot_size_array``. ``float_label_dense``: Raw labels
    and dense values (RawAsync: dense values) are float32 rather than int32 (the int32 dense
    values are transformed to ln(x + 1) as HugeCTR does). ``num_samples``: stop after
    that many samples."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, found {batch_size!r}")
    if num_samples is not None and num_samples < 0:
        raise UsageError(f"num_samples must be >= 0, found {num_samples}")
    chunks = read_chunks(source, fmt, layout, chunk_samples=batch_size,
                         float_label_dense=float_label_dense)
    return rebatch(chunks, layout, batch_size, num_samples)


def count_samples(source, fmt: str, layout: DataLayout, *,
                  float_label_dense: bool = False) -> int | None:
    """Samples in a dataset from headers, sizes or Parquet metadata alone (for progress
    bars); None when that cannot be told cheaply or the files are malformed (the readers
    then name the problem)."""
    import os

    import numpy as np

    from ..errors import ConversionError
    try:
        if fmt == "parquet":
            from .parquet import _pyarrow, parquet_files
            _, pq = _pyarrow()
            return sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(source)[0])
        files = data_files(source)
        if fmt == "norm":
            total = 0
            for f in files:
                with open(f, "rb") as fh:
                    head = fh.read(72)
                start = 4 if head[:4] == b"\x40\x00\x00\x00" else 0
                total += int(np.frombuffer(head[start + 8:start + 16], "<i8")[0])
            return total
        from .raw import raw_dtype, rawasync_dtype
        dtype = raw_dtype(layout, float_label_dense) if fmt == "raw" else \
            rawasync_dtype(layout, float_label_dense)
        return sum(os.path.getsize(f) // dtype.itemsize for f in files)
    except (ConversionError, OSError, ValueError, IndexError):
        return None

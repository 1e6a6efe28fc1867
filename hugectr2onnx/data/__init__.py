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

__all__ = ["FORMATS", "Batch", "Chunk", "DataLayout", "SparseSlots", "open_dataset",
           "read_chunks", "read_file_list"]


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

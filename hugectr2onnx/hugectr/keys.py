"""Key offsets of HugeCTR's Parquet reader (FORMATS §6.4): the keys a table was trained on."""

from __future__ import annotations

import numpy as np


def slot_offsets(slot_size_array, num_columns: int) -> np.ndarray:
    """int64 offset per categorical column: ``sum(slot_size_array[:c])`` for the columns the
    array covers, 0 for the columns past its end (as HugeCTR's reader does)."""
    sizes = np.asarray(list(slot_size_array), dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 0).any():
        raise ValueError(f"slot_size_array must be non-negative sizes, found {sizes!r:.80}")
    offsets = np.zeros(num_columns, dtype=np.int64)
    covered = min(num_columns, sizes.size)
    offsets[:covered] = np.concatenate([[0], np.cumsum(sizes)])[:covered]
    return offsets


def offset_keys(keys: np.ndarray, slot_size_array, padding_key: int | None = -1) -> np.ndarray:
    """Parquet keys ``[rows, columns(, nnz)]`` as the embedding saw them; entries equal to
    ``padding_key`` (absent entries of multi-hot slots) stay as they are."""
    keys = np.asarray(keys, dtype=np.int64)
    offsets = slot_offsets(slot_size_array, keys.shape[1])
    shifted = keys + offsets.reshape((1, -1) + (1,) * (keys.ndim - 2))
    return shifted if padding_key is None else np.where(keys == padding_key, keys, shifted)

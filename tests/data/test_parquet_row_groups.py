"""The Parquet reader's public per-file API (what Ray's actors use): one row group, or one
pyarrow record batch, decodes on its own to the rows the writer was given."""

from __future__ import annotations

import numpy as np
import pytest

from hugectr2onnx.data import DataLayout, SparseSlots
from hugectr2onnx.data.parquet import ParquetReader
from hugectr2onnx.data.writers import write_parquet
from hugectr2onnx.errors import DatasetError

N = 1000
LAYOUT = DataLayout(("y",), (1,), "dense", 3,
                    (SparseSlots("s1", 2, (1, 1)), SparseSlots("s2", 2, (3, 2), False)),
                    "I64", -1)


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.random((N, 1)).astype(np.float32)
    dense = rng.random((N, 3)).astype(np.float32)
    k1 = rng.integers(0, 2 ** 40, (N, 2, 1))
    cnt = np.minimum(rng.integers(0, 4, (N, 2)), [3, 2])
    k2 = np.where(np.arange(3) < cnt[:, :, None], rng.integers(0, 2 ** 40, (N, 2, 3)), -1)
    files = write_parquet(tmp_path / "pq", LAYOUT, labels, dense, [k1, k2], files=2,
                          row_group_size=128)
    return files, (labels, dense, k1, k2)


def test_each_row_group_decodes_alone(dataset):
    files, (labels, dense, k1, k2) = dataset
    reader = ParquetReader(files, LAYOUT)
    got, row = [], 0
    for path in reader.files:
        part = reader.open(path)
        groups = part.file.metadata.num_row_groups
        assert groups > 1
        for g in reversed(range(groups)):  # any order: each group stands alone
            first = sum(part.file.metadata.row_group(i).num_rows for i in range(g))
            chunks = list(part.chunks(50, row_groups=[g], first_row=first))
            assert all(len(c) <= 50 for c in chunks)
            got.append((row + first, chunks))
        row += part.file.metadata.num_rows
    got.sort(key=lambda x: x[0])
    chunks = [c for _, cs in got for c in cs]
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), labels)
    np.testing.assert_array_equal(np.concatenate([c.dense for c in chunks]), dense)
    np.testing.assert_array_equal(np.concatenate([c.keys[0] for c in chunks]), k1)
    np.testing.assert_array_equal(np.concatenate([c.keys[1] for c in chunks]), k2)


def test_decode_one_record_batch_read_with_pyarrow(dataset):
    import pyarrow.parquet as pq

    files, (labels, dense, k1, k2) = dataset
    reader = ParquetReader(files, LAYOUT)
    part = reader.open(reader.files[0])
    table = pq.read_table(reader.files[0], columns=part.columns)
    rb = table.slice(100, 30).combine_chunks().to_batches()[0]  # crosses a row group
    chunk = part.decode(rb, row=100)
    np.testing.assert_array_equal(chunk.dense, dense[100:130])
    np.testing.assert_array_equal(chunk.keys[1], k2[100:130])
    with pytest.raises(DatasetError, match="no column") as e:
        part.decode(rb.drop_columns([part.columns[-1]]), row=100)
    assert reader.files[0] in str(e.value)

"""Writers and readers of the four dataset formats agree, across files and batch sizes.
(Independent checks against bytes laid out by hand: test_spec_bytes.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from hugectr2onnx.data import DataLayout, SparseSlots, open_dataset
from hugectr2onnx.data.writers import write_norm, write_parquet, write_raw, write_rawasync

N = 600


def layout(key_type="I64", **kw):
    return DataLayout(("a", "b"), (1, 2), "dense", 3,
                      (SparseSlots("s1", 2, (1, 1)), SparseSlots("s2", 3, (4, 2, 3), False)),
                      key_type, -1, **kw)


@pytest.fixture
def samples():
    rng = np.random.default_rng(0)
    labels = rng.random((N, 3)).astype(np.float32)
    dense = rng.random((N, 3)).astype(np.float32)
    k1 = rng.integers(0, 2 ** 31, (N, 2, 1))
    cnt = np.minimum(rng.integers(0, 5, (N, 3)), [4, 2, 3])
    k2 = np.where(np.arange(4) < cnt[:, :, None], rng.integers(0, 2 ** 31, (N, 3, 4)), -1)
    return labels, dense, k1, k2


def collect(batches, name):
    return np.concatenate([b.inputs[name] for b in batches])


@pytest.mark.parametrize("key_type", ["I32", "I64"])
@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("batch", [7, 256, 4096])
def test_norm_variable_length_across_files(tmp_path, samples, key_type, checksum, batch):
    labels, dense, k1, k2 = samples
    lay = layout(key_type)
    paths = [tmp_path / "a.bin", tmp_path / "b.bin"]
    write_norm(paths[0], lay, labels, dense, [k1, k2], checksum=checksum)
    write_norm(paths[1], lay, labels[:100], dense[:100], [k1[:100], k2[:100]], checksum=checksum)
    batches = list(open_dataset(paths, "norm", lay, batch))
    assert [len(b) for b in batches[:-1]] == [batch] * (len(batches) - 1)
    assert [b.start for b in batches] == list(range(0, N + 100, batch))
    assert (collect(batches, "s2") == np.concatenate([k2, k2[:100]])).all()
    assert (collect(batches, "s1") == np.concatenate([k1, k1[:100]])).all()
    np.testing.assert_array_equal(collect(batches, "dense"), np.concatenate([dense, dense[:100]]))
    got_b = np.concatenate([b.labels["b"] for b in batches])
    np.testing.assert_array_equal(got_b, np.concatenate([labels[:, 1:], labels[:100, 1:]]))


def test_raw_int_dense_is_log1p(tmp_path, samples):
    labels, _, k1, _ = samples
    lay = DataLayout(("a",), (1,), "dense", 3, (SparseSlots("s1", 2, (1, 1)),), "I32")
    ints = np.random.default_rng(1).integers(0, 1000, (N, 3))
    write_raw(tmp_path / "r.bin", lay, labels[:, :1] > 0.5, ints, [k1])
    batches = list(open_dataset(tmp_path / "r.bin", "raw", lay, 100))
    np.testing.assert_allclose(collect(batches, "dense"), np.log(ints + 1.0), rtol=1e-6)
    assert (collect(batches, "s1") == k1).all()


def test_rawasync_multi_hot(tmp_path, samples):
    labels, _, k1, _ = samples
    rng = np.random.default_rng(2)
    lay = layout("I64")
    k2 = rng.integers(-2 ** 40, 2 ** 40, (N, 3, 4))
    k2[:, 1, 2:] = -1
    k2[:, 2, 3:] = -1
    dense = rng.random((N, 3)).astype(np.float32)
    write_rawasync(tmp_path / "r.bin", lay, labels > 0.5, dense, [k1, k2], dense_float=True)
    batches = list(open_dataset(tmp_path / "r.bin", "rawasync", lay, 100, float_label_dense=True))
    assert (collect(batches, "s2") == k2).all()
    np.testing.assert_array_equal(collect(batches, "dense"), dense)


@pytest.mark.parametrize("key_type", ["I32", "I64"])
def test_parquet_lists_files_and_offsets(tmp_path, samples, key_type):
    labels, dense, k1, k2 = samples
    file_list = write_parquet(tmp_path / "pq", layout(key_type), labels, dense, [k1, k2], files=3)
    batches = list(open_dataset(file_list, "parquet", layout(key_type), 128))
    assert (collect(batches, "s2") == k2).all()
    # 4 sizes for 5 columns: the last column gets no offset (HUGECTR_FORMATS 6.4)
    lay = layout(key_type, slot_size_array=(10, 20, 0, 5))
    batches = list(open_dataset(file_list, "parquet", lay, 128))
    want = np.where(k2 == -1, -1, k2 + np.array([30, 30, 0])[None, :, None])
    assert (collect(batches, "s2") == want).all()
    assert (collect(batches, "s1") == k1 + np.array([0, 10])[None, :, None]).all()


def test_num_samples_stops_early(tmp_path, samples):
    labels, dense, k1, k2 = samples
    write_norm(tmp_path / "a.bin", layout(), labels, dense, [k1, k2])
    batches = list(open_dataset(tmp_path / "a.bin", "norm", layout(), 64, num_samples=130))
    assert [len(b) for b in batches] == [64, 64, 2]

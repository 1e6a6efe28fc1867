"""Readers against bytes laid out by hand from HUGECTR_FORMATS 6 (struct.pack, not our
writers), so that a writer and a reader cannot agree on a mistake."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from hugectr2onnx.data import DataLayout, SparseSlots, open_dataset

PAD = -1


def one(batches, name):
    return np.concatenate([b.inputs[name] for b in batches])


def lay(key_type, sparse, label_dim=1, dense_dim=2, **kw):
    return DataLayout(("label",), (label_dim,), "dense", dense_dim, tuple(sparse), key_type, PAD,
                      **kw)


# ------------------------------------------------------------------------------ Norm
def norm_header(records, label_dim, dense_dim, slot_num, check=0):
    return struct.pack("<8q", check, records, label_dim, dense_dim, slot_num, 0, 0, 0)


def frame(payload: bytes) -> bytes:
    """[int32 L][payload][int8 sum of all payload bytes, wrapping]."""
    return struct.pack("<i", len(payload)) + payload + struct.pack("<B", sum(payload) & 0xFF)


def norm_sample(label, dense, slots, key_fmt):
    out = struct.pack(f"<{1 + len(dense)}f", label, *dense)
    for keys in slots:
        out += struct.pack("<i", len(keys)) + struct.pack(f"<{len(keys)}{key_fmt}", *keys)
    return out


SAMPLES = [  # label, dense, slots (slot 0 one-hot, slot 1 up to 3 keys)
    (1.0, [0.5, -2.0], [[7], [1, 2, 3]]),
    (0.0, [1.5, 3.0], [[4294967295], []]),
    (1.0, [0.0, 0.25], [[9], [5]]),
]


@pytest.mark.parametrize("framed", [False, True])
@pytest.mark.parametrize("key_type,key_fmt", [("I32", "I"), ("I64", "q")])
def test_norm_by_hand(tmp_path, framed, key_type, key_fmt):
    samples = SAMPLES if key_type == "I32" else \
        [(l, d, [[k if k != 4294967295 else -(2 ** 62)] for k in s[0]][:1] + [s[1]])
         for l, d, s in SAMPLES]
    head = norm_header(len(samples), 1, 2, 2, int(framed))
    body = [norm_sample(l, d, [s[0] if isinstance(s[0], list) else s[0], s[1]], key_fmt)
            for l, d, s in samples]
    data = (frame(head) + b"".join(frame(b) for b in body)) if framed else head + b"".join(body)
    # a file list with a trailing extra line, which HugeCTR ignores
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "list.txt").write_text(f"1\n{tmp_path / 'a.bin'}\nextra\n")
    layout = lay(key_type, [SparseSlots("k0", 1, (1,)), SparseSlots("k1", 1, (3,), False)])
    batches = list(open_dataset(tmp_path / "list.txt", "norm", layout, batch_size=2))
    assert [len(b) for b in batches] == [2, 1]
    k0 = one(batches, "k0")[:, 0, 0]
    expect0 = [7, 4294967295, 9] if key_type == "I32" else [7, -(2 ** 62), 9]
    assert k0.tolist() == expect0  # 32-bit keys zero-extended
    assert one(batches, "k1")[:, 0, :].tolist() == [[1, 2, 3], [PAD, PAD, PAD], [5, PAD, PAD]]
    assert one(batches, "dense").tolist() == [[0.5, -2.0], [1.5, 3.0], [0.0, 0.25]]
    assert np.concatenate([b.labels["label"] for b in batches]).ravel().tolist() == [1, 0, 1]


def test_norm_checksum_counts_nnz_bytes(tmp_path):
    """The checksum sums every payload byte, nnz fields included (FORMATS 6.1: trust the
    code): a sum that leaves out the nnz bytes is rejected."""
    head = norm_header(1, 1, 2, 2, 1)
    payload = norm_sample(1.0, [0.5, 1.0], [[300], [1, 2]], "I")
    nnz_bytes = struct.pack("<i", 1) + struct.pack("<i", 2)
    wrong = (sum(payload) - sum(nnz_bytes)) & 0xFF
    assert wrong != sum(payload) & 0xFF
    data = frame(head) + struct.pack("<i", len(payload)) + payload + struct.pack("<B", wrong)
    (tmp_path / "a.bin").write_bytes(data)
    layout = lay("I32", [SparseSlots("k0", 1, (1,)), SparseSlots("k1", 1, (3,), False)])
    from hugectr2onnx.errors import DatasetError
    with pytest.raises(DatasetError, match="checksum") as e:
        list(open_dataset(tmp_path / "a.bin", "norm", layout))
    assert "record 0" in str(e.value) and "a.bin" in str(e.value)


def test_norm_variable_many_samples_by_hand(tmp_path):
    """Enough variable-length samples for the pointer-doubling path (and across files)."""
    rng = np.random.default_rng(3)
    n = 700
    counts = rng.integers(0, 4, (n, 2))
    keys = rng.integers(0, 2 ** 32, (n, 2, 3))
    parts = []
    for i in range(n):  # laying out test bytes one sample at a time is fine here
        slots = [keys[i, s, :counts[i, s]].tolist() for s in range(2)]
        parts.append(norm_sample(float(i % 2), [float(i), -float(i)], slots, "I"))
    half = n // 2
    for name, chunk in (("a.bin", parts[:half]), ("b.bin", parts[half:])):
        (tmp_path / name).write_bytes(norm_header(len(chunk), 1, 2, 2) + b"".join(chunk))
    layout = lay("I32", [SparseSlots("k", 2, (3, 3), False)])
    batches = list(open_dataset([tmp_path / "a.bin", tmp_path / "b.bin"], "norm", layout, 64))
    assert batches[5].start == 320 and len(batches[5]) == 64  # crosses the file boundary
    got = one(batches, "k")
    want = np.where(np.arange(3) < counts[:, :, None], keys, PAD)
    assert (got == want).all()
    assert one(batches, "dense")[:, 0].tolist() == list(range(n))


# ------------------------------------------------------------------------------ Raw
def test_raw_int_and_float(tmp_path):
    layout = lay("I32", [SparseSlots("k", 3, (1, 1, 1))], dense_dim=2)
    rows = [(1, [0, 9], [5, 4294967295, 0]), (0, [99, 1], [1, 2, 3])]
    data = b"".join(struct.pack("<i2i3I", l, *d, *k) for l, d, k in rows)
    (tmp_path / "r.bin").write_bytes(data)
    b = list(open_dataset(tmp_path / "r.bin", "raw", layout, 10))[0]
    np.testing.assert_allclose(b.inputs["dense"], np.log(np.array([[1, 10], [100, 2]], np.float32)),
                               rtol=1e-7)
    assert b.inputs["k"][:, :, 0].tolist() == [[5, 4294967295, 0], [1, 2, 3]]
    assert b.labels["label"].ravel().tolist() == [1.0, 0.0]
    # an I64 model reads the same 32-bit word sign-extended
    b64 = list(open_dataset(tmp_path / "r.bin", "raw", lay("I64", layout.sparse), 10))[0]
    assert b64.inputs["k"][0, :, 0].tolist() == [5, -1, 0]
    floats = b"".join(struct.pack("<3f3I", 0.5, 1.25, -3.0, 1, 2, 3) for _ in range(3))
    (tmp_path / "f.bin").write_bytes(floats)
    bf = list(open_dataset(tmp_path / "f.bin", "raw", layout, 2, float_label_dense=True))
    assert [len(x) for x in bf] == [2, 1]
    assert bf[0].inputs["dense"][0].tolist() == [1.25, -3.0]
    assert bf[0].labels["label"][0, 0] == 0.5


# ------------------------------------------------------------------------------ RawAsync
@pytest.mark.parametrize("key_type", ["I32", "I64"])
def test_rawasync_by_hand(tmp_path, key_type):
    layout = lay(key_type, [SparseSlots("a", 1, (1,)), SparseSlots("b", 2, (3, 2))],
                 dense_dim=1)
    kf = "I" if key_type == "I32" else "q"
    big = 2 ** 33 + 5 if key_type == "I64" else 2 ** 31 + 5
    rows = [(1, [3], [11], [21, 22, 23], [31, big]), (0, [0], [12], [24, 25, 26], [32, 33])]
    data = b"".join(struct.pack(f"<ii{1 + 3 + 2}{kf}", l, *d, *a, *b, *c)
                    for l, d, a, b, c in rows)
    (tmp_path / "r.bin").write_bytes(data)
    b = list(open_dataset(tmp_path / "r.bin", "rawasync", layout, 8))[0]
    assert b.inputs["a"][:, 0, 0].tolist() == [11, 12]
    assert b.inputs["b"][0].tolist() == [[21, 22, 23], [31, big, PAD]]
    assert b.inputs["dense"][:, 0].tolist() == pytest.approx([math.log(4.0), 0.0])
    assert b.labels["label"].ravel().tolist() == [1.0, 0.0]


# ------------------------------------------------------------------------------ Parquet
def test_parquet_by_hand(tmp_path):
    """Columns picked by schema index, ascending within each group whatever the JSON
    order; list columns; offsets from slot_size_array; metadata found beside the data."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # schema: 0 C2 (list), 1 I1, 2 label, 3 C1, 4 unused, 5 I2
    t1 = pa.table({"C2": pa.array([[1, 2], [], [3]], pa.list_(pa.int64())),
                   "I1": pa.array([0.5, 1.5, 2.5], pa.float32()),
                   "label": pa.array([1, 0, 1], pa.float32()),
                   "C1": pa.array([7, 8, 9], pa.int64()),
                   "junk": pa.array(["x", "y", "z"]),
                   "I2": pa.array([-1, -2, -3], pa.float32())})
    pq.write_table(t1, data_dir / "p0.parquet")
    pq.write_table(t1.slice(0, 2), data_dir / "p1.parquet")
    meta = {"file_stats": [{"file_name": str(data_dir / "p0.parquet"), "num_rows": 3},
                           {"file_name": "p1.parquet", "num_rows": 2}],
            "labels": [{"col_name": "label", "index": 2}],
            "conts": [{"col_name": "I2", "index": 5}, {"col_name": "I1", "index": 1}],
            "cats": [{"col_name": "C1", "index": 3}, {"col_name": "C2", "index": 0}]}
    (data_dir / "_metadata.json").write_text(json.dumps(meta))
    (tmp_path / "_file_list.txt").write_text("2\ndata/p0.parquet\ndata/p1.parquet\n")
    layout = lay("I64", [SparseSlots("k", 2, (2, 2), False)], slot_size_array=(100, 1000))
    batches = list(open_dataset(tmp_path / "_file_list.txt", "parquet", layout, 4))
    assert [len(b) for b in batches] == [4, 1]
    keys = one(batches, "k")
    # column 0 (C2) comes first by index: offset 0; column 3 (C1): offset 100
    assert keys[:, 0].tolist() == [[1, 2], [PAD, PAD], [3, PAD], [1, 2], [PAD, PAD]]
    assert keys[:, 1, 0].tolist() == [107, 108, 109, 107, 108]
    assert one(batches, "dense").tolist() == [[0.5, -1], [1.5, -2], [2.5, -3], [0.5, -1],
                                              [1.5, -2]]
    assert np.concatenate([b.labels["label"] for b in batches]).ravel().tolist() == \
        [1, 0, 1, 1, 0]

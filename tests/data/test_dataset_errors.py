"""Bad datasets end in one typed error naming the file and the record, row, column or field."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from hugectr2onnx.data import DataLayout, SparseSlots, open_dataset
from hugectr2onnx.data.writers import write_norm, write_parquet, write_raw
from hugectr2onnx.errors import ConversionError, DatasetError, InputFileError

LAYOUT = DataLayout(("label",), (1,), "dense", 2,
                    (SparseSlots("k", 2, (1, 3), False),), "I32", -1)


def samples(n=50, seed=0):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 1000, (n, 2, 3))
    keys[:, 0, 1:] = -1
    keys[:, 1, 2:] = -1
    return rng.random((n, 1)), rng.random((n, 2)), [keys]


def read(path, fmt="norm", layout=LAYOUT, **kw):
    return list(open_dataset(path, fmt, layout, 16, **kw))


def norm_file(tmp_path, checksum=False, n=50):
    p = tmp_path / "a.bin"
    write_norm(p, LAYOUT, *samples(n), checksum=checksum)
    return p


def expect(match, fn, *args, where=None, **kw):
    with pytest.raises(DatasetError, match=match) as e:
        fn(*args, **kw)
    assert e.value.file
    if where:
        assert where in (e.value.where or ""), e.value.where
    return e.value


@pytest.mark.parametrize("checksum", [False, True])
def test_truncated_norm_names_record(tmp_path, checksum):
    p = norm_file(tmp_path, checksum)
    data = p.read_bytes()
    p.write_bytes(data[:-7])
    e = expect("truncated|bad record", read, p)
    assert "record 49" in e.where


def test_norm_header_disagrees_with_model(tmp_path):
    p = norm_file(tmp_path)
    data = bytearray(p.read_bytes())
    data[24:32] = struct.pack("<q", 5)  # dense_dim
    p.write_bytes(bytes(data))
    expect("the model has 1 \\+ 2", read, p, where="label_dim+dense_dim")
    data[24:32] = struct.pack("<q", 2)
    data[32:40] = struct.pack("<q", 3)  # slot_num
    p.write_bytes(bytes(data))
    expect("slot_num 3", read, p, where="slot_num")
    data[32:40] = struct.pack("<q", 2)
    data[0:8] = struct.pack("<q", 1)  # error_check without framing
    p.write_bytes(bytes(data))
    expect("error_check", read, p, where="error_check")


def test_norm_bad_checksum_names_record(tmp_path):
    p = norm_file(tmp_path, checksum=True)
    data = bytearray(p.read_bytes())
    data[-3] ^= 0x5A  # a key byte of the last record
    p.write_bytes(bytes(data))
    expect("checksum", read, p, where="record 49")


def test_norm_nnz_above_model(tmp_path):
    labels, dense, keys = samples()
    wide = DataLayout(("label",), (1,), "dense", 2, (SparseSlots("k", 2, (1, 5), False),),
                      "I32", -1)
    k = np.full((50, 2, 5), -1)
    k[:, :, :3] = keys[0]
    k[7, 1, :5] = [1, 2, 3, 4, 5]
    write_norm(tmp_path / "a.bin", wide, labels, dense, [k])
    expect("exceeds the model's 3", read, tmp_path / "a.bin", where="record 7")


def test_norm_fewer_records_than_header(tmp_path):
    p = norm_file(tmp_path)
    data = bytearray(p.read_bytes())
    data[8:16] = struct.pack("<q", 60)
    p.write_bytes(bytes(data))
    expect("promises 60 records", read, p, where="record 50")


def test_norm_wrong_key_width_hints(tmp_path):
    p = norm_file(tmp_path)
    e = expect("truncated|bad|exceeds", read, p, layout=LAYOUT.with_options(key_type="I64"))
    assert "I32" in str(e)


def test_raw_partial_sample(tmp_path):
    p = tmp_path / "r.bin"
    labels, dense, keys = samples()
    one_hot = DataLayout(("label",), (1,), "dense", 2, (SparseSlots("k", 2, (1, 1)),), "I32")
    write_raw(p, one_hot, labels > 0.5, dense * 10, [keys[0][:, :, :1]])
    p.write_bytes(p.read_bytes()[:-2])
    expect("truncated", read, p, "raw", one_hot, where="record 49")


def test_file_list_errors(tmp_path):
    (tmp_path / "l.txt").write_text("3\na.bin\n")
    (tmp_path / "a.bin").write_bytes(b"")
    expect("lists 3 files", read, tmp_path / "l.txt")
    (tmp_path / "l.txt").write_text("1\nmissing.bin\n")
    with pytest.raises(InputFileError, match="not found"):
        read(tmp_path / "l.txt")


# ------------------------------------------------------------------------------ Parquet
@pytest.fixture
def parquet(tmp_path):
    pytest.importorskip("pyarrow")
    return write_parquet(tmp_path / "pq", LAYOUT, *samples(), files=2)


def edit_metadata(file_list, fn):
    meta_path = file_list.parent / "_metadata.json"
    meta = json.loads(meta_path.read_text())
    fn(meta)
    meta_path.write_text(json.dumps(meta))


def test_parquet_missing_column(parquet):
    edit_metadata(parquet, lambda m: m["cats"][-1].update(index=40))
    expect("column index 40", read, parquet, "parquet", where="column 40")


def test_parquet_wrong_key_dtype(parquet):
    e = expect("int64", read, parquet, "parquet", LAYOUT.with_options(key_type="I64"))
    assert "column 3" in e.where and "C1" in e.where


def test_parquet_list_where_scalar_expected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.table({"label": pa.array([[1.0], [0.0, 1.0]], pa.list_(pa.float32())),
                             "I1": pa.array([1, 2], pa.float32()),
                             "I2": pa.array([1, 2], pa.float32()),
                             "C1": pa.array([[1, 2], [3, 4]], pa.list_(pa.uint32())),
                             "C2": pa.array([1, 2], pa.uint32())}), d / "p.parquet")
    meta = {"file_stats": [{"file_name": "p.parquet", "num_rows": 2}],
            "labels": [{"col_name": "label", "index": 0}],
            "conts": [{"col_name": "I1", "index": 1}, {"col_name": "I2", "index": 2}],
            "cats": [{"col_name": "C1", "index": 3}, {"col_name": "C2", "index": 4}]}
    (d / "_metadata.json").write_text(json.dumps(meta))
    (d / "_file_list.txt").write_text("1\np.parquet\n")
    expect("list lengths differ", read, d, "parquet", where="row 1, column 0")
    meta["labels"] = []
    (d / "_metadata.json").write_text(json.dumps(meta))
    # the key columns feed a one-hot input (max_nnz 1): two keys do not fit
    one_hot = DataLayout(("label",), (1,), "dense", 2, (SparseSlots("k", 2, (1, 1)),), "I32")
    expect("at most 1", read, d, "parquet", one_hot, where="row 0, column 3")


def test_parquet_rows_disagree_with_metadata(parquet):
    edit_metadata(parquet, lambda m: m["file_stats"][0].update(num_rows=7))
    expect("7 rows", read, parquet, "parquet", where="num_rows")


def test_parquet_no_metadata(parquet):
    (parquet.parent / "_metadata.json").unlink()
    expect("_metadata.json", read, parquet, "parquet")


def test_parquet_nulls(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.table({"label": pa.array([1, None], pa.float32()),
                             "I1": pa.array([1, 2], pa.float32()),
                             "I2": pa.array([1, 2], pa.float32()),
                             "C1": pa.array([1, 2], pa.uint32()),
                             "C2": pa.array([1, 2], pa.uint32())}), d / "p.parquet")
    meta = {"labels": [{"col_name": "label", "index": 0}],
            "conts": [{"col_name": "I1", "index": 1}, {"col_name": "I2", "index": 2}],
            "cats": [{"col_name": "C1", "index": 3}, {"col_name": "C2", "index": 4}]}
    (d / "_metadata.json").write_text(json.dumps(meta))
    (d / "_file_list.txt").write_text("1\np.parquet\n")
    expect("missing value", read, d, "parquet", where="row 1, column 0")


def test_errors_are_conversion_errors():
    assert issubclass(DatasetError, ConversionError)

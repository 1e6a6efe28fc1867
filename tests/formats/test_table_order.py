"""Hashed tables stored in slot order, and index arrays stored as lanes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hugectr2onnx import converter
from hugectr2onnx.errors import UsageError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.onnx_backend import embedding
from hugectr2onnx.onnx_backend.embedding import uses_slot_order
from hugectr2onnx.onnx_backend.external import DataFile, Lanes, SlotOrderTable

I64 = np.iinfo(np.int64)
KEYS, VEC = 6000, 8


def _builder(slots=3, nnz=2):
    return (ModelBuilder().input(dense_dim=3, sparse=[dict(top="s", slot_num=slots,
                                                           nnz_per_slot=nnz)])
            .embedding(bottom="s", top="e", vec_size=VEC, combiner="sum")
            .dense("Reshape", "e", "r", leading_dim=slots * VEC)
            .dense("Concat", ["r", "dense"], "c")
            .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


def _hashed_table(seed=3):
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(I64.min, I64.max, KEYS, dtype=np.int64, endpoint=True))
    keys = rng.permutation(keys)
    return {"keys": keys, "vectors": rng.uniform(-1, 1, (keys.size, VEC)).astype(np.float32)}


def _initializers(path):
    m = onnx.load(str(path))
    return {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}


@pytest.mark.parametrize("external", ["never", "always"])
@pytest.mark.parametrize("order", ["auto", "slot", "file"])
def test_hashed_table_orders_match_reference(roundtrip, order, external):
    table = _hashed_table()
    _, _, out, _ = roundtrip(_builder(), convert_embedding=True, tables=[table], lookup="hash",
                             table_order=order, external_data=external, batch=64)
    inits = _initializers(out)
    stored = inits["e.table"]
    rows_read = any("slot_rows" in n for n in inits)
    if order == "file":
        assert stored.shape == (table["keys"].size + 1, VEC) and rows_read
        np.testing.assert_array_equal(stored[1:], table["vectors"])
    else:  # a row per slot; the trained rows are all there, the rest are zero
        assert stored.shape[0] > table["keys"].size + 1 and not rows_read
        nonzero = stored[np.abs(stored).sum(1) > 0]
        assert nonzero.shape[0] == table["keys"].size
        want = table["vectors"][np.lexsort(table["vectors"].T[::-1])]
        np.testing.assert_array_equal(nonzero[np.lexsort(nonzero.T[::-1])], want)


def test_odd_keys_per_sample_and_padding_key_in_slot_order(roundtrip):
    """3 slots x 1 key: the lane split is off; a trained key equal to the padding key must
    still read zeros."""
    table = _hashed_table(5)
    table["keys"][7] = -1  # the padding key is also a trained key
    roundtrip(_builder(slots=3, nnz=1), convert_embedding=True, tables=[table], lookup="hash",
              table_order="slot", batch=64)


def test_slot_order_tables_are_not_staged(tmp_path, monkeypatch):
    from hugectr2onnx.hugectr.writer import save_model

    art = save_model(_builder(), tmp_path / "in", tables=[_hashed_table()])
    staged = []
    real = converter.stage_tables
    monkeypatch.setattr(converter, "EXTERNAL_MIN_BYTES", 1)
    monkeypatch.setattr(converter, "stage_tables",
                        lambda path, tables, **kw: staged.append(len(tables)) or
                        real(path, tables, **kw))
    for order, want in (("slot", []), ("file", [1])):
        converter.convert(str(tmp_path / f"{order}.onnx"), art.graph_config, art.dense_model,
                          True, art.sparse_models, lookup="hash", table_order=order,
                          external_data="always")
        assert staged == want, order


def test_auto_order_limit_and_choices(monkeypatch):
    keys = np.array([5, 10 ** 15, -7], dtype=np.int64)  # spread out: hash
    vectors = np.zeros((3, 4), np.float32)
    assert uses_slot_order(keys, vectors, "auto", "auto")
    assert not uses_slot_order(keys, vectors, "auto", "file")
    assert not uses_slot_order(np.arange(3, dtype=np.int64), vectors, "auto", "auto")  # direct
    assert not uses_slot_order(keys, vectors, "label_encoder", "slot")
    monkeypatch.setattr(embedding, "SLOT_ORDER_MAX_BYTES", vectors.nbytes - 1)
    assert not uses_slot_order(keys, vectors, "auto", "auto")
    assert uses_slot_order(keys, vectors, "hash", "slot")  # forced above the limit
    with pytest.raises(UsageError, match="table_order must be one of"):
        uses_slot_order(keys, vectors, "auto", "random")
    with pytest.raises(UsageError, match="table_order must be one of"):
        converter.convert("x.onnx", "g.json", "d.model", table_order="sorted")


def _written(tensor, tmp_path):
    with open(tmp_path / "out", "w+b", buffering=0) as f:
        proto = DataFile(f.fileno(), "out").add("t", tensor)
    raw = np.fromfile(tmp_path / "out", dtype=tensor.dtype)
    return raw.reshape(tuple(proto.dims))


def test_lanes_repeat_the_array(tmp_path):
    a = np.array([3, -1, 7], np.int64)
    t = Lanes(a, 2)
    assert t.shape == (2, 3) and t.nbytes == 2 * a.nbytes
    want = np.array([[3, -1, 7], [3, -1, 7]])
    np.testing.assert_array_equal(np.asarray(t), want)
    np.testing.assert_array_equal(_written(t, tmp_path), want)


def test_slot_order_table_rows(tmp_path, monkeypatch):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    source = np.array([0, 3, 0, 1, 4, 2, 0], np.int32)
    want = np.zeros((7, 3), np.float32)
    want[[1, 3, 4, 5]] = vectors[[2, 0, 3, 1]]
    t = SlotOrderTable(vectors, source)
    np.testing.assert_array_equal(np.asarray(t), want)
    monkeypatch.setattr("hugectr2onnx.onnx_backend.external.CHUNK", 24)  # 2 rows per chunk
    np.testing.assert_array_equal(_written(t, tmp_path), want)
    empty = SlotOrderTable(np.zeros((0, 3), np.float32), np.zeros(1, np.int32))
    np.testing.assert_array_equal(np.asarray(empty), np.zeros((1, 3)))

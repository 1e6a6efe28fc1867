"""The embedding_dump reader against bytes laid out by hand from HugeCTR's parameter_IO.cpp
(struct.pack, not our writer), and the description's cross-checks."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from hugectr2onnx.errors import (CollectionError, ConversionError, GraphStructureError,
                                 SparseModelError)
from hugectr2onnx.hugectr.collection_description import (load_collection_tables,
                                                         parse_description)
from hugectr2onnx.hugectr.embedding_collection import read_dump_table, read_meta_data
from hugectr2onnx.hugectr.graph_json import parse_graph
from hugectr2onnx.layers.base import default_registry


def meta_bytes(ids, counts, sizes, key_type=0, value_type=0):
    n = len(ids)
    return (struct.pack("<5i", n, key_type, value_type, 0, 0) + struct.pack(f"<{n}i", *ids)
            + struct.pack(f"<{n}Q", *counts) + struct.pack(f"<{n}i", *sizes))


def head(kind, j):
    return struct.pack("<32i", kind, j, *([0] * 30))


def lay_out(folder, ids, tables, key_fmt="I", value_type=0):
    """tables: (keys, rows) lists of Python numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta_data").write_bytes(meta_bytes(
        ids, [len(k) for k, _ in tables], [len(r[0]) for _, r in tables],
        key_type=0 if key_fmt == "I" else 1, value_type=value_type))
    for j, (keys, rows) in enumerate(tables):
        (folder / f"key{j}").write_bytes(head(1, j) + struct.pack(f"<{len(keys)}{key_fmt}",
                                                                  *keys))
        flat = [v for r in rows for v in r]
        (folder / f"weight{j}").write_bytes(head(2, j) + struct.pack(f"<{len(flat)}f", *flat))
    return folder


def test_meta_data_two_tables_unaligned_counts(tmp_path):
    # n = 2: the uint64 counts start at byte 28, not a multiple of 8
    p = tmp_path / "meta_data"
    p.write_bytes(meta_bytes([0, 1], [3, 2**40 + 5], [4, 128], key_type=1, value_type=1))
    m = read_meta_data(p)
    assert m.table_ids == [0, 1]
    assert m.key_counts == [3, 2**40 + 5]
    assert m.ev_sizes == [4, 128]
    assert (m.key_type, m.value_type) == ("int64", "float16")
    assert p.stat().st_size == 20 + 16 * 2


def test_rows_read_as_float32_even_with_fp16_flag(tmp_path):
    rows = [[0.5, -1.25], [3.0, 4.0], [7.5, 8.25]]
    folder = lay_out(tmp_path / "ebc", [0], [([2, 0, 1], rows)], value_type=1)
    meta = read_meta_data(folder / "meta_data")
    t = read_dump_table(folder, 0, meta)
    assert t.keys.tolist() == [2, 0, 1] and t.keys.dtype == np.dtype("<u4")
    assert np.asarray(t.vectors).tolist() == rows


def test_half_sized_payload_is_named(tmp_path):
    folder = lay_out(tmp_path / "ebc", [0], [([0, 1], [[1.0, 2.0], [3.0, 4.0]])])
    w = folder / "weight0"
    w.write_bytes(w.read_bytes()[:128] + np.zeros(4, np.float16).tobytes())
    with pytest.raises(SparseModelError, match="2 bytes per value") as e:
        read_dump_table(folder, 0, read_meta_data(folder / "meta_data"))
    assert e.value.file.endswith("weight0") and "byte offset" in e.value.where


@pytest.mark.parametrize("mutate,match,offset", [
    (lambda b: b[:19], "shorter than the 20-byte header", 19),
    (lambda b: struct.pack("<i", 0) + b[4:], "table count 0", 0),
    (lambda b: b[:4] + struct.pack("<i", 2) + b[8:], "key type 2", 4),
    (lambda b: b[:8] + struct.pack("<i", 7) + b[12:], "value type 7", 8),
    (lambda b: b + b"\0", "20 \\+ 16 x 2 = 52 bytes", 52),
    (lambda b: b[:20] + struct.pack("<2i", 1, 0) + b[28:], "not strictly increasing", 24),
    (lambda b: b[:44] + struct.pack("<i", 0) + b[48:], "vector size 0", 44),
])
def test_meta_data_errors_name_the_byte(tmp_path, mutate, match, offset):
    p = tmp_path / "meta_data"
    p.write_bytes(mutate(meta_bytes([0, 1], [3, 4], [2, 2])))
    with pytest.raises(SparseModelError, match=match) as e:
        read_meta_data(p)
    assert e.value.file == str(p) and e.value.where == f"byte offset {offset}"


@pytest.mark.parametrize("name,data,match,offset", [
    ("key0", head(2, 0) + struct.pack("<2I", 0, 1), "type 2, a key file has 1", 0),
    ("key0", head(1, 1) + struct.pack("<2I", 0, 1), "says table 1, the file name says 0", 4),
    ("key0", head(1, 0) + struct.pack("<3I", 0, 1, 2), "gives 2 uint32 keys", 136),
    ("weight0", head(2, 0) + struct.pack("<3f", 1, 2, 3), "rows of 2 float32", 140),
])
def test_key_and_weight_file_errors(tmp_path, name, data, match, offset):
    folder = lay_out(tmp_path / "ebc", [0], [([0, 1], [[1.0, 2.0], [3.0, 4.0]])])
    (folder / name).write_bytes(data)
    with pytest.raises(SparseModelError, match=match) as e:
        read_dump_table(folder, 0, read_meta_data(folder / "meta_data"))
    assert e.value.file.endswith(name) and e.value.where == f"byte offset {min(offset, 1 << 30)}"


# --------------------------------------------------------------------------- description
GRAPH = {"layers": [
    {"type": "Data", "label": {"top": "label", "label_dim": 1},
     "dense": {"top": "dense", "dense_dim": 2},
     "sparse": [{"top": "a", "slot_num": 1, "nnz_per_slot": 2, "is_fixed_length": True},
                {"top": "b", "slot_num": 1, "nnz_per_slot": 3, "is_fixed_length": False}]},
    {"type": "Concat", "bottom": ["emb", "dense"], "top": "c"},
    {"type": "InnerProduct", "bottom": "c", "top": "fc", "fc_param": {"num_output": 1}},
    {"type": "BinaryCrossEntropyLoss", "bottom": ["fc", "label"], "top": "loss"}]}


def desc_doc(**over):
    doc = {"dump_dir": "d/embedding_collection_0", "output": {"layout": "batch_major",
                                                            "top": "emb"},
           "tables": [{"name": "t", "vocab": 3, "ev_size": 2},
                      {"name": "h", "vocab": -1, "ev_size": 2}],
           "lookups": [{"input": "a", "table": "h", "combiner": "sum"},
                       {"input": "b", "table": "t", "combiner": "average"}]}
    doc.update(over)
    return doc


def setup(tmp_path, doc=None):
    """Dump written by hand: table ids by first use, so h is table 0 and t is table 1."""
    lay_out(tmp_path / "d" / "embedding_collection_0", [0, 1],
            [([10**9 + 7, 5], [[1.0, 2.0], [3.0, 4.0]]),
             ([2, 0, 1], [[0.5, 0.5], [1.5, 1.5], [2.5, 2.5]])])
    path = tmp_path / "ebc.json"
    path.write_text(json.dumps(doc or desc_doc()))
    return parse_description(json.loads(path.read_text()), str(path))


def graph_with(desc):
    return parse_graph(json.loads(json.dumps(GRAPH)), "g.json", default_registry(), desc)


def test_description_builds_lookups_sharing_ids_and_rows_by_key(tmp_path):
    desc = setup(tmp_path)
    assert desc.dump_dir == tmp_path / "d" / "embedding_collection_0"  # relative to the file
    g = graph_with(desc)
    embs = g.embeddings
    assert [(e.bottom, e.top, e.combiner, e.max_nnz) for e in embs] == [
        ("a", "emb0", "sum", 2), ("b", "emb1", "mean", 3)]
    assert g.shapes["emb"][1:] == (4,)  # batch-major [B, 2 + 2]
    load_collection_tables(desc, embs)
    assert embs[0].table.keys.tolist() == [10**9 + 7, 5]
    assert embs[1].table.keys.dtype == np.int64
    assert embs[1].table.keys.tolist() == [2, 0, 1]


@pytest.mark.parametrize("change,match,where", [
    (dict(tables=[{"name": "t", "vocab": 3, "ev_size": 4},
                  {"name": "h", "vocab": -1, "ev_size": 2}]), "ev_size 4, but .*gives 2",
     "tables[0].ev_size"),
    (dict(tables=[{"name": "t", "vocab": 4, "ev_size": 2},
                  {"name": "h", "vocab": -1, "ev_size": 2}]), "vocab 4.*counts 3 keys",
     "tables[0].vocab"),
    (dict(key_type="int64"), "key_type int64, but .*uint32", "key_type"),
])
def test_dump_cross_checks_name_both_sources(tmp_path, change, match, where):
    desc = setup(tmp_path, desc_doc(**change))
    g = graph_with(desc)
    with pytest.raises(CollectionError, match=match) as e:
        load_collection_tables(desc, g.embeddings)
    assert e.value.file == str(tmp_path / "ebc.json") and e.value.where == where
    assert "meta_data" in str(e.value)


def test_table_count_and_subset_dump(tmp_path):
    desc = setup(tmp_path)
    meta = tmp_path / "d" / "embedding_collection_0" / "meta_data"
    meta.write_bytes(meta_bytes([0], [2], [2]))
    with pytest.raises(CollectionError, match="2 tables, but .*holds 1"):
        load_collection_tables(desc, graph_with(desc).embeddings)
    meta.write_bytes(meta_bytes([1], [3], [2]))  # model.embedding_dump(path, ["t"])
    with pytest.raises(SparseModelError, match="subset of the tables.*inconsistent"):
        load_collection_tables(desc, graph_with(desc).embeddings)


def test_static_key_outside_vocabulary(tmp_path):
    desc = setup(tmp_path)
    key1 = tmp_path / "d" / "embedding_collection_0" / "key1"
    key1.write_bytes(head(1, 1) + struct.pack("<3I", 2, 3, 1))
    with pytest.raises(SparseModelError, match="key 3 of static table 't'.*\\[0, 3\\)") as e:
        load_collection_tables(desc, graph_with(desc).embeddings)
    assert e.value.where == "byte offset 132"


@pytest.mark.parametrize("lookups,match,where", [
    ([{"input": "b", "table": "h", "combiner": "sum"},
      {"input": "a", "table": "t", "combiner": "sum"}], "input 'b', but sparse input 0",
     "lookups[0].input"),
    ([{"table": "h", "combiner": "sum"}, {"table": "t", "combiner": "sum"},
      {"table": "t", "combiner": "sum"}], "3 lookups, but the graph JSON", "lookups"),
])
def test_graph_cross_checks(tmp_path, lookups, match, where):
    doc = desc_doc(lookups=lookups, tables=[{"name": "h", "vocab": -1, "ev_size": 2},
                                            {"name": "t", "vocab": 3, "ev_size": 2}])
    desc = parse_description(doc, str(tmp_path / "e.json"))
    with pytest.raises(CollectionError, match=match) as e:
        graph_with(desc)
    assert e.value.where == where and "g.json" in str(e.value)


def test_collection_inputs_have_one_slot():
    doc = json.loads(json.dumps(GRAPH))
    doc["layers"][0]["sparse"][1].update(slot_num=2, nnz_per_slot=[3, 3])
    desc = parse_description(desc_doc(), "e.json")
    with pytest.raises(CollectionError, match="slot_num 2; an embedding collection reads one"):
        parse_graph(doc, "g.json", default_registry(), desc)


def test_unread_output_and_missing_description():
    desc = parse_description(desc_doc(output={"layout": "batch_major", "top": "other"}),
                             "e.json")
    with pytest.raises(GraphStructureError, match="outputs \\['other'\\], which no layer .*"
                       "read \\['emb'\\], which nothing produces"):
        graph_with(desc)
    with pytest.raises(GraphStructureError, match="embedding collection.*--embedding-collection"):
        graph_with(None)


@pytest.mark.parametrize("doc,match,where", [
    (desc_doc(extra=1), "unknown field", "extra"),
    (desc_doc(lookups=[{"table": "t", "combiner": "sum", "combinr": "sum"}]),
     "unknown field\\(s\\) \\['combinr'\\]", "lookups[0].combinr"),
    (desc_doc(lookups=[{"table": "zz", "combiner": "sum"}]), "table 'zz' is not among",
     "lookups[0].table"),
    (desc_doc(lookups=[{"table": "t", "combiner": "mean"}]), "one of \\['sum', 'average'",
     "lookups[0].combiner"),
    (desc_doc(lookups=[{"table": "t", "combiner": "sum"}]), "serve no lookup", "tables"),
    (desc_doc(output={"layout": "feature_major"}), "'top' must be a non-empty string",
     "lookups[0].top"),
    (desc_doc(output={"layout": "batch_major"}), "'top' must be", "output.top"),
    (desc_doc(tables=[{"name": "t", "vocab": -2, "ev_size": 2}]), "vocab", "tables[0].vocab"),
    ([], "must be an object", "document"),
])
def test_description_schema_errors(doc, match, where):
    with pytest.raises(CollectionError, match=match) as e:
        parse_description(doc, "e.json")
    assert e.value.where == where and e.value.file == "e.json"


def test_every_error_is_a_conversion_error():
    assert issubclass(CollectionError, ConversionError)

"""End to end: embedding-collection models written with our writers, converted, and compared
with the numpy reference and with a numpy computation straight from the written tables."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ebc_models import dlrm_dcnv2, mixed_model, write_model
from hugectr2onnx import converter
from hugectr2onnx.cli import main
from hugectr2onnx.errors import UsageError
from hugectr2onnx.hugectr.dump_writer import shard_order, write_embedding_dump
from hugectr2onnx.loader import load_model
from hugectr2onnx.reference import run_reference
from hugectr2onnx.verify import compare, random_feeds


def run_onnx(path, feeds, extra_outputs=()):
    """ONNX outputs, plus intermediate tensors exposed as extra outputs."""
    model = onnx.load(str(path))
    for name in extra_outputs:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                     None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in sess.get_inputs()}
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {k: v for k, v in feeds.items() if k in wanted})))


def by_key(keys, rows, queries, pad=-1):
    """[..., nnz, D] rows of ``queries`` from (keys, rows) as written, zeros for unseen keys
    and padding: a dict-free numpy search, independent of the converter's lookups."""
    order = np.argsort(keys)
    sk = np.asarray(keys, dtype=np.int64)[order]
    pos = np.clip(np.searchsorted(sk, queries), 0, sk.size - 1)
    hit = (sk[pos] == queries) & (queries != pad)
    return np.where(hit[..., None], rows[order][pos], 0).astype(np.float32), hit


def convert_model(tmp_path, builder, doc, **kw):
    art, desc, tables = write_model(tmp_path, builder, doc, **kw)
    out = tmp_path / "model.onnx"
    report = converter.convert(str(out), art.graph_config, art.dense_model,
                               ntp_file=art.ntp_file, embedding_collection=desc)
    onnx.checker.check_model(str(out), full_check=True)
    graph = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                       embedding_collection=desc)
    return art, desc, tables, out, report, graph


def test_dlrm_dcnv2(tmp_path):
    b, doc = dlrm_dcnv2(ev=8, projection_dim=16)
    # graph_to_json drops projection_dim: solved from the dense file's size
    art, desc, tables, out, report, graph = convert_model(tmp_path, b, doc,
                                                          drop_projection=True)
    assert "projection_dim" not in open(art.graph_config).read()
    assert len(graph.embeddings) == 26 and len(report.tables) == 26
    cross = next(l for l in graph.layers if l.type == "MultiCross")
    assert cross.params["projection_dim"] == 16 and cross.in_shapes[0][1:] == (26 * 8 + 8,)
    feeds = random_feeds(graph, 48, convert_embedding=True, seed=5)
    got = run_onnx(out, feeds, ["sparse_embedding"])
    want = run_reference(graph, feeds, keep_all=True)
    # straight from the written (keys, rows), shard-ordered: rows placed by key
    expect = np.concatenate([by_key(k, r, feeds[f"data{i}"])[0].sum(axis=2)[:, 0, :]
                             for i, (k, r) in enumerate(tables)], axis=1)
    assert expect.shape == (48, 26 * 8)
    assert (feeds["data20"] >= 400).any()  # unseen keys are exercised
    np.testing.assert_allclose(got["sparse_embedding"], expect, atol=1e-5)
    np.testing.assert_allclose(want["sparse_embedding"], expect, atol=1e-5)
    np.testing.assert_allclose(got["label"], want["label"], atol=1e-5)
    assert compare(graph, out, feeds).ok


def test_dynamic_table_average_and_concat(tmp_path):
    b, doc = mixed_model(ev=6)
    art, desc, tables, out, report, graph = convert_model(tmp_path, b, doc)
    hashed_keys, hashed_rows = tables[0]
    feeds = random_feeds(graph, 64, convert_embedding=True, seed=2)
    feeds["user"][0] = -1  # an empty bag
    feeds["items"][1, 0, 1] = 123456789  # an unseen key inside a concat
    got = run_onnx(out, feeds, ["e_user", "e_items", "e_cat"])
    user_rows, _ = by_key(hashed_keys, hashed_rows, feeds["user"])
    count = (feeds["user"] != -1).sum(axis=2)[..., None]
    avg = np.where(count > 0, user_rows.sum(axis=2) / np.maximum(count, 1), 0)
    items_rows, _ = by_key(hashed_keys, hashed_rows, feeds["items"])
    concat = items_rows.reshape(64, 1, 3 * 6)
    cat_rows, _ = by_key(*tables[1], feeds["cat"])
    np.testing.assert_allclose(got["e_user"], avg, atol=1e-6)
    assert not got["e_user"][0].any()
    np.testing.assert_allclose(got["e_items"], concat, atol=1e-6)
    assert not got["e_items"][1, 0, 6:12].any()
    np.testing.assert_allclose(got["e_cat"], cat_rows.sum(axis=2), atol=1e-6)
    want = run_reference(graph, feeds, keep_all=True)
    for name in ("e_user", "e_items", "e_cat", "label"):
        np.testing.assert_allclose(want[name], got[name], atol=1e-5, err_msg=name)
    # the shared table is stored once
    tables_in_model = [i for i in onnx.load(str(out)).graph.initializer
                       if i.name.endswith(".table")]
    assert len(tables_in_model) == 2


def test_uint32_keys_and_shared_table_in_batch_major(tmp_path):
    b, doc = mixed_model(ev=6)
    doc["key_type"] = "uint32"
    art, desc, tables, out, report, graph = convert_model(tmp_path, b, doc)
    assert graph.embeddings[0].table is graph.embeddings[1].table
    feeds = random_feeds(graph, 16, convert_embedding=True, seed=9)
    assert compare(graph, out, feeds).ok


def test_cli_convert_verify_and_verify_command(tmp_path, capsys):
    b, doc = mixed_model()
    art, desc, tables = write_model(tmp_path, b, doc)
    out = tmp_path / "cli.onnx"
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--embedding-collection", desc, "-o", str(out), "--verify"])
    text = capsys.readouterr().out
    assert rc == 0 and "table hashed" in text and "ok" in text
    rc = main(["verify", "--graph", art.graph_config, "--dense", art.dense_model,
               "--embedding-collection", desc, "--onnx", str(out), "--batch", "32"])
    assert rc == 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    b, doc = mixed_model()
    art, desc, tables = write_model(tmp_path, b, doc)
    bad = json.loads(open(desc).read())
    bad["tables"][1]["ev_size"] = 5
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--embedding-collection", str(tmp_path / "bad.json"), "-o",
               str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and "ev_size 5, but" in err and "meta_data" in err
    assert not (tmp_path / "x.onnx").exists()
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model, "-o",
               str(tmp_path / "y.onnx")])
    err = capsys.readouterr().err
    assert rc == 3 and "--embedding-collection" in err


@pytest.mark.parametrize("shards", [1, 4])
def test_row_order_does_not_matter(tmp_path, shards):
    """The same rows dumped in another shard order give the same embeddings."""
    b, doc = dlrm_dcnv2(ev=4)
    art, desc, tables = write_model(tmp_path, b, doc)
    rows_by_key = [r[np.argsort(k)] for k, r in tables]
    write_embedding_dump(tmp_path / "dump", [(shard_order(r.shape[0], shards),
                                              r[shard_order(r.shape[0], shards)])
                                             for r in rows_by_key])
    graph = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                       embedding_collection=desc)
    feeds = random_feeds(graph, 8, convert_embedding=True, seed=shards)
    values = run_reference(graph, feeds, keep_all=True)
    expect = np.concatenate(
        [np.where(((q >= 0) & (q < r.shape[0]))[..., None], r[np.clip(q, 0, r.shape[0] - 1)], 0)
         .sum(axis=2)[:, 0] for q, r in ((feeds[f"data{i}"], r)
                                          for i, r in enumerate(rows_by_key))], axis=1)
    np.testing.assert_allclose(values["sparse_embedding"], expect, atol=1e-6)


def test_empty_dynamic_table(tmp_path):
    """A dynamic table that never saw a key is dumped with no rows: every lookup gives
    zeros (HugeCTR would insert random vectors on first sight)."""
    b, doc = mixed_model(ev=6)
    art, desc, tables = write_model(tmp_path, b, doc)
    tables[0] = (np.zeros(0, np.int64), np.zeros((0, 6), np.float32))
    write_embedding_dump(tmp_path / "dump", tables, key_type="int64")
    out = tmp_path / "m.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, ntp_file=art.ntp_file,
                      embedding_collection=desc)
    graph = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                       embedding_collection=desc)
    feeds = random_feeds(graph, 8, convert_embedding=True, seed=1)
    got = run_onnx(out, feeds, ["e_user", "e_items"])
    assert not got["e_user"].any() and not got["e_items"].any()
    assert compare(graph, out, feeds).ok


def test_dump_laid_out_by_hand(tmp_path):
    """The whole dump written with struct from the format (not our dump writer), with the
    fp16 flag set and an unaligned count array; predictions checked against numpy on the
    same Python lists."""
    import struct
    b, doc = mixed_model(ev=2)
    art, desc, _ = write_model(tmp_path, b, doc)
    hashed_keys = [-7, 2**40, 5, 3]
    hashed_rows = [[0.5, 1.0], [2.0, -1.0], [0.25, 0.75], [-3.0, 4.0]]
    cat_keys = [1, 3, 0, 2] + list(range(4, 50))  # two shards: odd keys first would also do
    cat_rows = [[float(k), -float(k), 0.5 * k, 1.0] for k in cat_keys]
    folder = tmp_path / "dump" / "embedding_collection_0"
    meta = (struct.pack("<5i", 2, 1, 1, 0, 0) + struct.pack("<2i", 0, 1)
            + struct.pack("<2Q", 4, 50) + struct.pack("<2i", 2, 4))
    (folder / "meta_data").write_bytes(meta)
    for j, (keys, rows) in enumerate(((hashed_keys, hashed_rows), (cat_keys, cat_rows))):
        head = lambda kind: struct.pack("<32i", kind, j, *([0] * 30))  # noqa: E731
        (folder / f"key{j}").write_bytes(head(1) + struct.pack(f"<{len(keys)}q", *keys))
        flat = [v for r in rows for v in r]
        (folder / f"weight{j}").write_bytes(head(2) + struct.pack(f"<{len(flat)}f", *flat))
    out = tmp_path / "hand.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, ntp_file=art.ntp_file,
                      embedding_collection=desc)
    feeds = {"dense": np.zeros((2, 5), np.float32),
             "user": np.array([[[5, -7, -1, -1]], [[-1, -1, -1, -1]]], np.int64),
             "items": np.array([[[2**40, 99, 3]], [[3, 3, -7]]], np.int64),
             "cat": np.array([[[0, 3]], [[49, 77]]], np.int64)}
    got = run_onnx(out, feeds, ["e_user", "e_items", "e_cat"])
    np.testing.assert_allclose(got["e_user"], [[[0.375, 0.875]], [[0, 0]]], atol=1e-6)
    np.testing.assert_allclose(got["e_items"], [[[2, -1, 0, 0, -3, 4]],
                                                [[-3, 4, -3, 4, 0.5, 1]]], atol=1e-6)
    np.testing.assert_allclose(got["e_cat"], [[[3, -3, 1.5, 2]], [[49, -49, 24.5, 1]]],
                               atol=1e-6)


def test_collection_beside_a_legacy_embedding(tmp_path):
    """A SparseEmbedding reads its own input; the collection's lookups take the rest."""
    b, doc = mixed_model(ev=3)
    b.data["sparse"].insert(1, {"top": "legacy", "slot_num": 2, "nnz_per_slot": [2, 2],
                                "is_fixed_length": True, "type": "DistributedSlot"})
    b.embedding(bottom="legacy", top="e_legacy", vec_size=4)
    b.dense("Reshape", "e_legacy", "r_legacy", leading_dim=8, time_step=0)
    concat = next(l for l in b.dense_layers if l["top"] == "all")
    concat["bottom"] = concat["bottom"] + ["r_legacy"]
    art, desc, tables = write_model(tmp_path, b, doc)
    out = tmp_path / "both.onnx"
    with pytest.raises(UsageError, match="need sparse_models besides the embedding collection"):
        converter.convert(str(out), art.graph_config, art.dense_model, ntp_file=art.ntp_file,
                          embedding_collection=desc)
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, embedding_collection=desc)
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file,
                       embedding_collection=desc)
    assert [e.bottom for e in graph.embeddings] == ["legacy", "user", "items", "cat"]
    assert compare(graph, out, random_feeds(graph, 16, convert_embedding=True, seed=4)).ok

"""End-to-end: NVIDIA's 12 converter test architectures (hugectr2onnx.zoo), shrunk, written
with random weights and tables, converted through the drop-in API and run in onnxruntime
next to the numpy reference."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest

from hugectr2onnx import zoo
from hugectr2onnx.ir import EmbeddingTable
from hugectr2onnx.reference import embedding_reference
from hugectr2onnx.verify import random_feeds

BATCH = 16


def small(name, **kw):
    return zoo.MODELS[name](**{**zoo.SMALL[name], **kw})


def make_feeds(graph, tables, *, convert_embedding, seed=0, padding_key=-1):
    """random_feeds on the builder's graph; BST's dense feature holds sequence lengths."""
    for emb, t in zip(graph.embeddings, tables):
        emb.table = EmbeddingTable(np.asarray(t["keys"], np.int64), t["vectors"],
                                   t.get("slot_ids"))
    feeds = random_feeds(graph, BATCH, convert_embedding=convert_embedding, seed=seed,
                         padding_key=padding_key)
    masks = [l for l in graph.layers if l.type == "SequenceMask"]
    if masks:  # non-integer lengths from 0 to past the end test the truncation
        longest = masks[0].params.get("max_sequence_len_to", 1)
        rng = np.random.default_rng(seed + 1)
        feeds[graph.data.dense_name] = rng.uniform(0, longest + 1, (BATCH, 1)).astype(np.float32)
    return feeds


def run(roundtrip, builder, *, convert_embedding=True, seed=0, table_kw=None, save_kw=None,
        load_kw=None, tables=None, **convert_kw):
    saved, graph, random = zoo.random_model(builder, seed=seed, **(table_kw or {}))
    tables = tables or random
    feeds = make_feeds(graph, tables, convert_embedding=convert_embedding, seed=seed,
                       padding_key=convert_kw.get("padding_key", -1))
    report, loaded, out, art = roundtrip(saved, convert_embedding=convert_embedding, feeds=feeds,
                                         tables=tables, save_kw={"graph": graph, **(save_kw or {})},
                                         load_kw=load_kw, **convert_kw)
    assert sorted(o.name for o in report.outputs) == sorted(graph.data.label_names)
    return report, loaded, art, feeds


@pytest.mark.parametrize("convert_embedding", [True, False], ids=["with_embedding", "dense_only"])
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_architecture(roundtrip, name, convert_embedding):
    run(roundtrip, small(name), convert_embedding=convert_embedding)


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_architecture_with_hashed_64bit_keys(roundtrip, name):
    _, graph, _, feeds = run(roundtrip, small(name), seed=1, table_kw={"hashed": True})
    keys = np.concatenate([np.asarray(e.table.keys) for e in graph.embeddings])
    assert (keys < 0).any() and (np.abs(keys) > 2 ** 40).mean() > 0.9


def test_default_sizes_match_the_scripts():
    """Spot checks of the full-size graphs against the training scripts' numbers."""
    layers = {b["top"] if isinstance(b["top"], str) else b["top"][0]: b
              for b in zoo.dlrm().graph_json()["layers"][2:]}
    assert layers["interaction1"]["bottom"] == ["relu3", "sparse_embedding1"]
    assert [l for l in layers if l.startswith("bn")] == ["bn5", "bn6", "bn7"]
    mmoe = zoo.mmoe_parquet().graph_json()["layers"]
    assert mmoe[0]["label"] == {"top": ["50k_label", "married_label"], "label_dim": [1, 1]}
    assert mmoe[1]["type"] == "LocalizedSlotSparseEmbeddingHash"
    bst = zoo.bst_avg_pooling().graph_json()["layers"]
    auto = {b["bottom"]: b["top"] for b in bst if b["type"] == "Slice"}
    # graph_analysis duplicates every tensor read twice or more
    assert auto == {"dense": ["dense_slice0", "dense_slice1"],
                    "hist_emb_list": [f"hist_emb_list_slice{i}" for i in range(3)],
                    "query_emb": ["query_emb_slice0", "query_emb_slice1"],
                    "attention_layer_norm": ["attention_layer_norm_slice0",
                                             "attention_layer_norm_slice1"]}
    neumf = {b["top"][0]: b for b in zoo.neumf().graph_json()["layers"][2:]
             if b["type"] == "Slice"}
    assert neumf["mlp_embedding"]["ranges"] == [[0, 127], [128, 143]]
    assert neumf["user"]["ranges"] == [[0, 7], [8, 15]]


@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize("name", ["wdl", "dcn", "deepfm"])
def test_variable_length_multi_hot(roundtrip, name, combiner):
    builder = small(name, nnz=3, fixed=False, combiner=combiner)
    _, graph, _, feeds = run(roundtrip, builder, seed=2)
    keys = feeds[graph.embeddings[0].bottom]
    present = (keys != -1).sum(axis=2)
    assert (present == 0).any() and (present == 1).any() and (present > 1).any()


@pytest.mark.parametrize("name", ["wdl", "mmoe_parquet"])  # Distributed, Localized
@pytest.mark.parametrize("key_type", ["I32", "I64"])
def test_legacy_single_file_tables(roundtrip, name, key_type):
    _, graph, art, _ = run(roundtrip, small(name), seed=3,
                           table_kw={"hashed": True, "key_bits": 32 if key_type == "I32" else 64},
                           save_kw={"legacy_sparse": True, "key_type": key_type},
                           load_kw={"key_type": key_type}, key_type=key_type)
    record = 4 * graph.embeddings[0].vec_size + (4 if key_type == "I32" else 8) \
        + 8 * graph.embeddings[0].localized
    table = graph.embeddings[0].table
    assert np.asarray(table.keys).size * record == os.path.getsize(art.sparse_models[0])
    if key_type == "I32":  # keys past 2^31 must come back zero-extended, not negative
        assert (np.asarray(table.keys) >= 2 ** 31).any() and (np.asarray(table.keys) >= 0).all()


def _repeated_localized_tables(graph, seed):
    """Each key on both GPUs of a 2-GPU run (slot_id parities 0 and 1) with different
    vectors, plus keys seen on one GPU only."""
    rng = np.random.default_rng(seed)
    emb = graph.embeddings[0]
    keys = rng.permutation(400)[:150].astype(np.int64)
    both = keys[:100]
    all_keys = np.concatenate([keys, both])
    # first copy of a repeated key on GPU 0, the second on GPU 1; the rest anywhere
    parity = np.concatenate([np.zeros(100, np.int64), rng.integers(0, 2, 50),
                             np.ones(100, np.int64)])
    slots = 2 * rng.integers(0, emb.slot_num // 2, all_keys.size) + parity
    order = rng.permutation(all_keys.size)
    return [{"keys": all_keys[order], "slot_ids": slots[order].astype(np.uint64),
             "vectors": rng.uniform(-1, 1, (all_keys.size, emb.vec_size)).astype(np.float32)}]


@pytest.mark.parametrize("legacy", [False, True], ids=["folder", "single_file"])
def test_localized_keys_repeated_across_gpus(roundtrip, legacy):
    builder = small("mmoe_parquet", num_gpus=2)
    hparam = builder.embeddings[0]["sparse_embedding_hparam"]
    assert hparam["max_vocabulary_size_global"] % 2 == 0
    tables = _repeated_localized_tables(builder.graph(), seed=4)
    _, graph, _, feeds = run(roundtrip, builder, seed=4, tables=tables,
                             save_kw={"legacy_sparse": legacy})
    emb = graph.embeddings[0]
    keys = feeds[emb.bottom]
    per_gpu = embedding_reference(emb, keys, num_gpus=2)
    ignoring_slots = embedding_reference(emb, keys, num_gpus=1)
    assert not np.allclose(per_gpu, ignoring_slots), "the tables do not exercise slot_id"


def test_localized_num_gpus_given_explicitly(roundtrip):
    builder = small("mmoe_parquet", num_gpus=2)
    tables = _repeated_localized_tables(builder.graph(), seed=5)
    run(roundtrip, builder, seed=5, tables=tables, num_gpus=2)


def test_localized_repeated_keys_with_hash_lookup(roundtrip):
    """The hash build meets the repeated keys first; the converter then groups by GPU."""
    builder = small("mmoe_parquet", num_gpus=2)
    tables = _repeated_localized_tables(builder.graph(), seed=6)
    run(roundtrip, builder, seed=6, tables=tables, lookup="hash")
    model = onnx.load(str(roundtrip.tmp_path / f"m{roundtrip.count}" / "model.onnx"))
    mults = [t.name for t in model.graph.initializer if t.name.endswith(".mults")]
    assert len(mults) == 2, mults  # one hash index per GPU group


@pytest.mark.parametrize("convert_embedding", [True, False])
def test_dcn_v2_projection_dim_recovered_from_file_size(roundtrip, convert_embedding):
    builder = small("dcn", projection_dim=3)
    _, graph, art, _ = run(roundtrip, builder, seed=6, convert_embedding=convert_embedding)
    saved = json.loads(open(art.graph_config).read())
    cross = [b for b in saved["layers"] if b["type"] == "MultiCross"][0]
    assert "projection_dim" not in cross["mc_param"]
    assert [l.params.get("projection_dim") for l in graph.layers if l.type == "MultiCross"] == [3]


def test_dlrm_without_batchnorm_and_with_fp16_ntp(roundtrip):
    run(roundtrip, small("dlrm", batchnorm=False), seed=7)
    run(roundtrip, small("dlrm"), seed=7, save_kw={"fp16_ntp": True})


@pytest.mark.parametrize("opset", [13, 21])
@pytest.mark.parametrize("name", ["bst_avg_pooling", "din_try", "mmoe_parquet"])
def test_other_opsets(roundtrip, name, opset):
    run(roundtrip, small(name), seed=8, opset=opset)


def test_empty_ntp_path_as_nvidia_tests_pass_it(roundtrip, tmp_path):
    """NVIDIA's MMoE test calls convert(..., True, sparse_models, "") with no ntp file."""
    from hugectr2onnx.converter import convert

    from hugectr2onnx.errors import NtpError
    from hugectr2onnx.loader import load_model
    from hugectr2onnx.verify import compare

    art = zoo.save(small("mmoe_parquet"), tmp_path / "m", num_keys=50)
    assert art.ntp_file is None  # MMoE has no BatchNorm: "" must mean "no ntp file"
    report = convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model, True,
                     art.sparse_models, "")
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, "")
    check = compare(graph, tmp_path / "m.onnx", random_feeds(graph, 8, convert_embedding=True))
    assert report.layers == len(graph.layers) and len(check.outputs) == 2 and check.ok, \
        check.summary()
    # and "" is no file: a model with BatchNorm still asks for its statistics
    bn = zoo.save(small("dlrm"), tmp_path / "d", num_keys=50)
    assert bn.ntp_file is not None
    with pytest.raises(NtpError, match="needs running statistics"):
        convert(str(tmp_path / "d.onnx"), bn.graph_config, bn.dense_model, False, None, "")

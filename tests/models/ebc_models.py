"""Embedding-collection models written with our writers: graph JSON as graph_to_json writes
it (no collection block, no projection_dim), an embedding_dump folder and a description."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hugectr2onnx.hugectr.collection_description import parse_description
from hugectr2onnx.hugectr.dump_writer import shard_order, write_description, write_embedding_dump
from hugectr2onnx.hugectr.writer import ModelBuilder, random_weights, save_model
from hugectr2onnx.zoo import unsaved

# shaped like HugeCTR's samples/dlrm (26 tables, its multi-hot sizes), vocabularies shrunk
DLRM_VOCAB = [400, 39, 17, 74, 20, 3, 71, 15, 63, 400, 306, 405, 10, 22, 119, 155, 4, 97,
              14, 400, 400, 400, 59, 129, 108, 36]
DLRM_HOTNESS = [3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3,
                1, 1]


def dlrm_dcnv2(ev: int = 8, projection_dim: int = 16, dense_dim: int = 13) -> tuple:
    """(builder, description doc) of DLRM-DCNv2: list-form sum lookups -> [B, 26*ev],
    Concat with the bottom MLP, MultiCross v2, top MLP, BCE."""
    n = len(DLRM_VOCAB)
    sparse = [{"top": f"data{i}", "slot_num": 1, "nnz_per_slot": DLRM_HOTNESS[i]}
              for i in range(n)]
    b = ModelBuilder(model_name="dlrm_dcnv2").input(dense_dim=dense_dim, sparse=sparse)
    b.dense("MLP", "dense", "mlp1", mlp_param={"num_output": 0, "num_outputs": [32, 16, 8],
                                               "use_bias": True, "activation": "Relu"})
    b.dense("Concat", ["sparse_embedding", "mlp1"], "concat1", axis=1)
    b.dense("MultiCross", "concat1", "interaction1",
            mc_param={"num_layers": 3, "projection_dim": projection_dim})
    b.dense("MLP", "interaction1", "mlp2",
            mlp_param={"num_output": 0, "num_outputs": [32, 32, 16, 1], "use_bias": True,
                       "activations": ["Relu", "Relu", "Relu", "None"]})
    b.dense("BinaryCrossEntropyLoss", ["mlp2", "label"], "loss")
    doc = {"dump_dir": "dump/embedding_collection_0",
           "output": {"layout": "batch_major", "top": "sparse_embedding"},
           "tables": [{"name": str(i), "vocab": DLRM_VOCAB[i], "ev_size": ev} for i in range(n)],
           "lookups": [{"input": f"data{i}", "table": str(i), "combiner": "sum"}
                       for i in range(n)]}
    return b, doc


def mixed_model(ev: int = 6) -> tuple:
    """A dynamic (hash) table shared by an average and a concat lookup, a static table with
    a sum lookup; feature-major outputs [B, 1, width] each, reshaped and concatenated."""
    sparse = [{"top": "user", "slot_num": 1, "nnz_per_slot": 4, "is_fixed_length": False},
              {"top": "items", "slot_num": 1, "nnz_per_slot": 3},
              {"top": "cat", "slot_num": 1, "nnz_per_slot": 2}]
    b = ModelBuilder(model_name="mixed").input(dense_dim=5, sparse=sparse)
    b.dense("Reshape", "e_user", "r_user", leading_dim=ev, time_step=0)
    b.dense("Reshape", "e_items", "r_items", leading_dim=3 * ev, time_step=0)
    b.dense("Reshape", "e_cat", "r_cat", leading_dim=4, time_step=0)
    b.dense("Concat", ["r_user", "r_items", "r_cat", "dense"], "all", axis=1)
    b.dense("InnerProduct", "all", "fc1", fc_param={"num_output": 16})
    b.dense("ReLU", "fc1", "relu1")
    b.dense("InnerProduct", "relu1", "fc2", fc_param={"num_output": 1})
    b.dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss")
    doc = {"dump_dir": "dump/embedding_collection_0", "key_type": "int64",
           "output": {"layout": "feature_major"},
           "tables": [{"name": "hashed", "vocab": -1, "ev_size": ev},
                      {"name": "cats", "vocab": 50, "ev_size": 4}],
           "lookups": [{"input": "user", "table": "hashed", "combiner": "average",
                        "top": "e_user"},
                       {"input": "items", "table": "hashed", "combiner": "concat",
                        "top": "e_items"},
                       {"input": "cat", "table": "cats", "combiner": "sum", "top": "e_cat"}]}
    return b, doc


def random_dump_tables(doc: dict, rng: np.random.Generator, *, shards: int = 3,
                       dynamic_keys: int = 300) -> list[tuple[np.ndarray, np.ndarray]]:
    """(keys, rows) per table in HugeCTR's id order (first use by the lookups): static tables
    in model-parallel shard order, dynamic tables with raw int64 keys in random order."""
    order = []
    for lk in doc["lookups"]:
        if lk["table"] not in order:
            order.append(lk["table"])
    specs = {t["name"]: t for t in doc["tables"]}
    out = []
    for name in order:
        t = specs[name]
        if t["vocab"] >= 0:
            keys = shard_order(t["vocab"], shards)
        else:
            keys = rng.permutation(np.unique(rng.integers(-(2 ** 62), 2 ** 62, dynamic_keys)))
        out.append((keys, rng.uniform(-1, 1, (keys.size, t["ev_size"])).astype(np.float32)))
    return out


def write_model(directory, builder: ModelBuilder, doc: dict, seed: int = 0,
                key_type: str = "uint32", drop_projection: bool = False, **dump_kw):
    """Artifacts, description path and the (keys, rows) written. ``drop_projection``: the
    graph JSON without MultiCross projection_dim, as graph_to_json writes it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    desc_path = directory / "ebc.json"
    write_description(desc_path, dump_dir=doc["dump_dir"], tables=doc["tables"],
                      lookups=doc["lookups"], layout=doc["output"]["layout"],
                      top=doc["output"].get("top"), key_type=doc.get("key_type"))
    builder.collection = parse_description(doc, str(desc_path))
    graph = builder.graph()
    random_weights(graph, np.random.default_rng(seed))
    saved = unsaved(builder) if drop_projection else builder
    art = save_model(saved, directory, seed=seed, graph=graph)
    rng = np.random.default_rng(seed + 1)
    tables = random_dump_tables(doc, rng)
    write_embedding_dump(directory / "dump", tables, key_type=doc.get("key_type", key_type),
                         **dump_kw)
    return art, str(desc_path), tables

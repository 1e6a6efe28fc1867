"""``record``: training scripts of our own, in the style of HugeCTR's samples/dlrm/train.py,
run against the recording stand-in; the files it writes convert with a dump of ours."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from hugectr2onnx import converter
from hugectr2onnx.cli import main
from hugectr2onnx.hugectr.dump_writer import shard_order, write_embedding_dump
from hugectr2onnx.hugectr.graph_json import load_graph
from hugectr2onnx.hugectr.writer import random_weights, write_dense
from hugectr2onnx.loader import load_model
from hugectr2onnx.record import RecordError, record
from hugectr2onnx.verify import compare, random_feeds

SCRIPTS = Path(__file__).parent / "scripts"


def dump_for(description: Path, rng) -> list:
    """A dump matching a recorded description (static: shard order; dynamic: raw keys)."""
    doc = json.loads(description.read_text())
    tables = []
    for t in doc["tables"]:  # recorded in HugeCTR's id order
        keys = (shard_order(t["vocab"], 2) if t["vocab"] >= 0
                else np.unique(rng.integers(-(2 ** 40), 2 ** 40, 200)))
        tables.append((keys, rng.uniform(-1, 1, (keys.size, t["ev_size"])).astype(np.float32)))
    write_embedding_dump(description.parent / "dump", tables, key_type=doc["key_type"])
    return tables


def convert_recorded(tmp_path, graph_path, desc_path, seed=0):
    rng = np.random.default_rng(seed)
    dump_for(desc_path, rng)
    from hugectr2onnx.hugectr.collection_description import load_description
    graph = load_graph(graph_path, collection=load_description(desc_path))
    random_weights(graph, rng)
    write_dense(tmp_path / "dense.model", graph)
    out = tmp_path / "model.onnx"
    converter.convert(str(out), str(graph_path), str(tmp_path / "dense.model"),
                      embedding_collection=str(desc_path))
    onnx.checker.check_model(str(out), full_check=True)
    loaded = load_model(graph_path, tmp_path / "dense.model", embedding_collection=desc_path)
    report = compare(loaded, out, random_feeds(loaded, 32, convert_embedding=True, seed=seed))
    assert report.ok, report.summary()
    return loaded


def test_dcnv2_script(tmp_path):
    modules = set(sys.modules)
    argv = list(sys.argv)
    res = record(SCRIPTS / "train_dcnv2.py", ["--ev_size", "4", "--projection_dim", "8"],
                 graph=tmp_path / "graph.json", description=tmp_path / "ebc.json")
    assert "hugectr" not in sys.modules and "mpi4py" not in sys.modules
    left = {m.split(".")[0] for m in set(sys.modules) - modules}
    assert not left & {"hugectr", "mpi4py", "dcn_logger"} and sys.argv == argv
    doc = json.loads((tmp_path / "ebc.json").read_text())
    assert res.lookups == 26 and doc["output"] == {"layout": "batch_major",
                                                   "top": "sparse_embedding"}
    assert doc["key_type"] == "uint32" and doc["tables"][20] == {"name": "20", "vocab": 400,
                                                                 "ev_size": 4}
    assert [lk["input"] for lk in doc["lookups"]] == [f"data{i}" for i in range(26)]
    blocks = json.loads((tmp_path / "graph.json").read_text())["layers"]
    assert blocks[0]["sparse"][20] == {"top": "data20", "nnz_per_slot": [100],
                                       "is_fixed_length": True, "slot_num": 1}
    cross = next(b for b in blocks if b["type"] == "MultiCross")
    assert cross["mc_param"] == {"num_layers": 3, "projection_dim": 8}
    mlp2 = next(b for b in blocks if b.get("top") == "mlp2")
    assert mlp2["mlp_param"]["activations"] == ["Relu", "Relu", "Relu", "None"]
    graph = convert_recorded(tmp_path, tmp_path / "graph.json", tmp_path / "ebc.json")
    assert graph.shapes["sparse_embedding"][1:] == (26 * 4,)


def test_mixed_script_feature_major_int64_reshape_shapes(tmp_path):
    record(SCRIPTS / "train_mixed.py", ["--ev", "5"], graph=tmp_path / "g.json",
           description=tmp_path / "e.json")
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["key_type"] == "int64" and doc["output"] == {"layout": "feature_major"}
    assert [(lk["table"], lk["combiner"], lk["top"]) for lk in doc["lookups"]] == [
        ("hashed", "average", "e_user"), ("hashed", "concat", "e_items"), ("cats", "sum", "e_cat")]
    blocks = json.loads((tmp_path / "g.json").read_text())["layers"]
    reshapes = [(b["leading_dim"], b["time_step"]) for b in blocks if b["type"] == "Reshape"]
    assert reshapes == [(5, 0), (15, 0), (4, 0)]  # from shape=[-1, d] (lost by graph_to_json)
    graph = convert_recorded(tmp_path, tmp_path / "g.json", tmp_path / "e.json", seed=3)
    assert graph.embeddings[0].table is graph.embeddings[1].table


def test_cli_record(tmp_path, capsys):
    rc = main(["record", "--graph", str(tmp_path / "g.json"), "--description",
               str(tmp_path / "e.json"), str(SCRIPTS / "train_dcnv2.py"), "--", "--ev_size",
               "2"])
    assert rc == 0 and "26 embedding-collection lookups" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["tables"][0]["ev_size"] == 2


def write_script(tmp_path, body: str) -> Path:
    p = tmp_path / "train.py"
    p.write_text("import hugectr\n" + body)
    return p


@pytest.mark.parametrize("body,match", [
    ("x = 1\n", "ended without calling model.compile"),
    ("raise KeyError('boom')\n", "line 2 of .*KeyError"),
    ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--x', required=True)\n"
     "p.parse_args()\n", "exited with status 2"),
    ("m = hugectr.Model(hugectr.CreateSolver())\n"
     "m.add(hugectr.Input(label_dim=1, label_name='l', dense_dim=2, dense_name='d'))\n"
     "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Frobnicate, bottom_names=['d'],"
     " top_names=['y'], k=3))\nm.compile()\n", "Frobnicate is not supported"),
    ("m = hugectr.Model(hugectr.CreateSolver())\n"
     "m.add(hugectr.Input(label_dim=1, label_name='l', dense_dim=2, dense_name='d'))\n"
     "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=['d'],"
     " top_names=['y'], num_output=1, weird=2))\nm.compile()\n", "'weird'"),
])
def test_script_errors(tmp_path, body, match):
    with pytest.raises(RecordError, match=match):
        record(write_script(tmp_path, body), graph=tmp_path / "g.json",
               description=tmp_path / "e.json")
    assert not (tmp_path / "g.json").exists() and "hugectr" not in sys.modules


def test_stubbed_modules_and_swallowed_exceptions(tmp_path):
    body = ("import mlperf_logging.mllog.constants as c\nfrom mlperf_common.x import Handler\n"
            "log = Handler(c.INIT_START)\nlog.event(key=c.RUN_START)\n"
            "m = hugectr.Model(hugectr.CreateSolver(), None, None)\n"
            "m.add(hugectr.Input(label_dim=1, label_name='l', dense_dim=2, dense_name='d'))\n"
            "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct,"
            " bottom_names=['d'], top_names=['y'], num_output=1))\n"
            "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.BinaryCrossEntropyLoss,"
            " bottom_names=['y', 'l'], top_names=['loss']))\n"
            "try:\n    m.compile()\nexcept Exception:\n    pass\nraise SystemExit(1)\n")
    script = write_script(tmp_path, body)
    with pytest.raises(RecordError, match="No module named 'mlperf_logging'.*--stub "
                       "mlperf_logging"):
        record(script, graph=tmp_path / "g.json", description=tmp_path / "e.json")
    res = record(script, graph=tmp_path / "g.json", description=tmp_path / "e.json",
                 stubs=["mlperf_logging", "mlperf_common"])
    assert res.description_path is None and res.layers == 2
    assert "mlperf_logging" not in sys.modules


def test_legacy_sparse_embedding_and_hugectr_submodules(tmp_path):
    body = (
        "from hugectr.inference import InferenceParams\n"
        "m = hugectr.Model(hugectr.CreateSolver(vvgpu=[[0, 1]]), hugectr.DataReaderParams(),"
        " hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD))\n"
        "m.add(hugectr.Input(label_dim=1, label_name='l', dense_dim=3, dense_name='d',\n"
        "    data_reader_sparse_param_array=[hugectr.DataReaderSparseParam('s', [2, 1], False,"
        " 2)]))\n"
        "m.add(hugectr.SparseEmbedding(hugectr.Embedding_t.LocalizedSlotSparseEmbeddingHash, 8,"
        " 4, 'mean', 'emb', 's', [10, 20]))\n"
        "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Reshape, bottom_names=['emb'],"
        " top_names=['r'], leading_dim=8))\n"
        "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat, bottom_names=['r', 'd'],"
        " top_names=['c']))\n"
        "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=['c'],"
        " top_names=['y']))\n"
        "m.add(hugectr.DenseLayer(hugectr.Layer_t.BinaryCrossEntropyLoss, ['y', 'l'], ['loss']))\n"
        "m.compile()\n")
    res = record(write_script(tmp_path, body), graph=tmp_path / "g.json",
                 description=tmp_path / "e.json")
    assert res.description_path is None and not (tmp_path / "e.json").exists()
    blocks = json.loads((tmp_path / "g.json").read_text())["layers"]
    assert blocks[1] == {"type": "LocalizedSlotSparseEmbeddingHash", "bottom": "s", "top": "emb",
                         "optimizer": {"type": "SGD", "update_type": "Global"},
                         "sparse_embedding_hparam": {"workspace_size_per_gpu_in_mb": 8,
                                                     "max_vocabulary_size_global":
                                                     2 * (8 * 2 ** 20 // (1 * 4 * 4)),
                                                     "embedding_vec_size": 4,
                                                     "combiner": "mean",
                                                     "slot_size_array": [10, 20]}}
    assert blocks[0]["sparse"] == [{"top": "s", "nnz_per_slot": [2, 1],
                                    "is_fixed_length": False, "slot_num": 2}]
    assert blocks[4]["fc_param"] == {"num_output": 1}  # HugeCTR's default
    graph = load_graph(tmp_path / "g.json")
    assert graph.shapes["y"][1:] == (1,) and graph.embeddings[0].combiner == "mean"


def test_modules_imported_by_the_script_survive(tmp_path):
    """Only the stand-ins and the script's own modules leave sys.modules afterwards."""
    (tmp_path / "helper_pkg.py").write_text("import hugectr\nBASE = hugectr.TrainingCallback\n")
    body = ("import helper_pkg, xml.dom.minidom\n"
            "m = hugectr.Model(hugectr.CreateSolver())\n"
            "m.add(hugectr.Input(label_dim=1, label_name='l', dense_dim=2, dense_name='d'))\n"
            "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct,"
            " bottom_names=['d'], top_names=['y'], num_output=1))\n"
            "m.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.BinaryCrossEntropyLoss,"
            " bottom_names=['y', 'l'], top_names=['loss']))\nm.compile()\n")
    sys.modules.pop("xml.dom.minidom", None)
    record(write_script(tmp_path, body), graph=tmp_path / "g.json",
           description=tmp_path / "e.json")
    assert "xml.dom.minidom" in sys.modules
    assert "helper_pkg" not in sys.modules and "hugectr" not in sys.modules


def test_recorded_json_matches_the_writer(tmp_path):
    """A DLRM-with-MLP script (as HugeCTR's dlrm_mlp.py writes it) records the same graph
    JSON as our writer's graph_to_json rendering of the zoo's dlrm_mlp."""
    from hugectr2onnx import zoo
    body = (
        "m = hugectr.Model(hugectr.CreateSolver(), None, None)\n"
        "m.add(hugectr.Input(label_dim=1, label_name='label', dense_dim=3, dense_name='dense',"
        " data_reader_sparse_param_array=[hugectr.DataReaderSparseParam('data1', 1, True, 4)]))\n"
        "m.add(hugectr.SparseEmbedding(embedding_type="
        "hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,"
        " workspace_size_per_gpu_in_mb=2400, embedding_vec_size=4, combiner='sum',"
        " sparse_embedding_name='sparse_embedding1', bottom_name='data1',"
        " optimizer=hugectr.CreateOptimizer()))\n"
        "L, A = hugectr.Layer_t, hugectr.Activation_t\n"
        "m.add(hugectr.DenseLayer(layer_type=L.MLP, bottom_names=['dense'], top_names=['mlp1'],"
        " num_outputs=[8, 4], act_type=A.Relu, use_bias=True))\n"
        "m.add(hugectr.DenseLayer(layer_type=L.Interaction,"
        " bottom_names=['mlp1', 'sparse_embedding1'], top_names=['interaction1']))\n"
        "m.add(hugectr.DenseLayer(layer_type=L.MLP, bottom_names=['interaction1'],"
        " top_names=['mlp2'], num_outputs=[8, 8, 6, 1],"
        " activations=[A.Relu, A.Relu, A.Relu, A.Non], use_bias=True))\n"
        "m.add(hugectr.DenseLayer(layer_type=L.BinaryCrossEntropyLoss,"
        " bottom_names=['mlp2', 'label'], top_names=['loss']))\n"
        "m.compile()\n")
    record(write_script(tmp_path, body), graph=tmp_path / "g.json",
           description=tmp_path / "e.json")
    got = json.loads((tmp_path / "g.json").read_text())["layers"]
    want = zoo.dlrm_mlp(**zoo.SMALL["dlrm_mlp"]).graph_json()["layers"]
    want[0]["sparse"][0].pop("type")  # a field of our writer, not of graph_to_json
    assert got == want  # embedding block too: max_vocabulary_size_global from the workspace
    assert got[1]["sparse_embedding_hparam"]["max_vocabulary_size_global"] == \
        2400 * 2 ** 20 // (3 * 4 * 4)  # Adam: two states per weight, one GPU

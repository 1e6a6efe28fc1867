"""Graphs of HugeCTR's inference session and Triton backend: no loss layer, a final Sigmoid,
often an ``inference`` block naming the trained files. Written by hand in the shape of
NVIDIA's test/utest/simple_inference_config.json and test/scripts/dcn_inference.json."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hugectr2onnx.cli import main
from hugectr2onnx.converter import convert
from hugectr2onnx.errors import GraphProblemsError
from hugectr2onnx.hugectr.graph_json import load_graph, parse_graph
from hugectr2onnx.hugectr.writer import random_weights, write_dense, write_sparse_folder
from hugectr2onnx.layers.base import default_registry
from hugectr2onnx.loader import load_model
from hugectr2onnx.reference import run_reference

SLOTS, VEC, DENSE = 4, 2, 3


def _layers(first_dense):
    """InnerProduct/ReLU stack from ``first_dense`` to a Sigmoid, as in NVIDIA's files."""
    out, bottom = [], first_dense
    for i, n in enumerate([5, 5, 1], 1):
        out.append({"name": f"fc{i}", "type": "InnerProduct", "bottom": bottom, "top": f"fc{i}",
                    "fc_param": {"num_output": n}})
        bottom = f"fc{i}"
        if n > 1:
            out.append({"name": f"relu{i}", "type": "ReLU", "bottom": bottom, "top": f"relu{i}"})
            bottom = f"relu{i}"
    out.append({"name": "sigmoid", "type": "Sigmoid", "bottom": bottom, "top": "sigmoid"})
    return out


def simple_inference_doc():
    """Like simple_inference_config.json (v3.4+ keys), smaller."""
    return {"inference": {"max_batchsize": 64, "hit_rate_threshold": 0.6,
                          "dense_model_file": "/hugectr/test/utest/_dense_10000.model",
                          "sparse_model_file": "/hugectr/test/utest/0_sparse_10000.model"},
            "layers": [
                {"name": "data", "type": "Data", "check": "Sum",
                 "label": {"top": "label", "label_dim": 1},
                 "dense": {"top": "dense", "dense_dim": DENSE},
                 "sparse": [{"top": "data1", "slot_num": SLOTS, "is_fixed_length": False,
                             "nnz_per_slot": 2}]},
                {"name": "sparse_embedding1", "type": "DistributedSlotSparseEmbeddingHash",
                 "bottom": "data1", "top": "sparse_embedding1",
                 "sparse_embedding_hparam": {"embedding_vec_size": VEC, "combiner": "mean",
                                             "workspace_size_per_gpu_in_mb": 1}},
                {"name": "reshape1", "type": "Reshape", "bottom": "sparse_embedding1",
                 "top": "reshape1", "leading_dim": SLOTS * VEC},
                {"name": "concat1", "type": "Concat", "bottom": ["reshape1", "dense"],
                 "top": "concat1"},
                *_layers("concat1")]}


def old_dcn_inference_doc():
    """Like the first dcn_inference.json (pre-v3.4 keys: no label top, integer combiner,
    max_feature_num_per_sample), with a cross network in front of the MLP."""
    doc = simple_inference_doc()
    data, emb = doc["layers"][0], doc["layers"][1]
    data["label"] = {"label_dim": 1}
    data["sparse"] = [{"top": "data1", "type": "DistributedSlot", "slot_num": SLOTS,
                       "max_feature_num_per_sample": 2}]
    emb["sparse_embedding_hparam"] = {"max_vocabulary_size_per_gpu": 1000,
                                      "embedding_vec_size": VEC, "combiner": 1}
    doc["layers"][4:] = [{"name": "multicross1", "type": "MultiCross", "bottom": "concat1",
                          "top": "multicross1", "mc_param": {"num_layers": 2}},
                         *_layers("multicross1")]
    return doc


def _write(doc, d: Path, seed=0):
    """Graph JSON, dense file and table beside it under the names the block gives."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "graph.json").write_text(json.dumps(doc, indent=1))
    graph = parse_graph(doc, "doc", default_registry())
    rng = np.random.default_rng(seed)
    random_weights(graph, rng)
    write_dense(d / "_dense_10000.model", graph)
    keys = np.arange(0, 300, 3, dtype=np.int64)
    vectors = rng.uniform(-1, 1, (keys.size, VEC)).astype(np.float32)
    write_sparse_folder(d / "0_sparse_10000.model", keys, vectors)
    return graph, keys, vectors


def _feeds(keys, batch=6, seed=1):
    rng = np.random.default_rng(seed)
    k = keys[rng.integers(0, keys.size, (batch, SLOTS, 2))]
    k[:, 0, 1] = -1  # padding in slot 0
    k[0, 1, 0] = 1  # an unseen key
    return {"dense": rng.standard_normal((batch, DENSE)).astype(np.float32), "data1": k}


def _by_hand(graph, feeds, keys, vectors):
    """The MLP inference graph written out in numpy (no handler involved)."""
    w = {l.tops[0]: l.weights for l in graph.layers if l.weights}
    k = feeds["data1"]
    pos = np.clip(np.searchsorted(keys, k), 0, keys.size - 1)
    found = (keys[pos] == k)[..., None]
    rows = np.where(found, vectors[pos], 0).sum(axis=2)
    count = (k != -1).sum(axis=2)[..., None]
    emb = np.where(count > 1, rows / np.maximum(count, 1), rows)
    x = np.concatenate([emb.reshape(len(k), -1), feeds["dense"]], axis=1).astype(np.float64)
    for name in ("fc1", "fc2", "fc3"):
        x = x @ w[name]["W"] + w[name]["b"]
        if name != "fc3":
            x = np.maximum(x, 0)
    return 1 / (1 + np.exp(-x))


def test_simple_inference_graph_outputs_its_final_sigmoid(tmp_path):
    graph, keys, vectors = _write(simple_inference_doc(), tmp_path)
    g = load_graph(tmp_path / "graph.json")
    assert [o.name for o in g.outputs] == ["sigmoid"]
    assert g.inference["max_batchsize"] == 64
    out = tmp_path / "m.onnx"
    convert(str(out), str(tmp_path / "graph.json"), str(tmp_path / "_dense_10000.model"), True,
            [str(tmp_path / "0_sparse_10000.model")])
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["sigmoid"]
    feeds = _feeds(keys)
    got = sess.run(None, feeds)[0]
    loaded = load_model(tmp_path / "graph.json", tmp_path / "_dense_10000.model",
                        [tmp_path / "0_sparse_10000.model"])
    want = _by_hand(loaded, feeds, keys, vectors)
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(run_reference(loaded, feeds)["sigmoid"], want, atol=2e-6)


def test_sigmoid_output_equals_the_loss_prediction_of_the_training_graph(tmp_path):
    """The same weights under BinaryCrossEntropyLoss (what HugeCTR trained) predict the same."""
    doc = old_dcn_inference_doc()
    _, keys, _ = _write(doc, tmp_path / "inf")
    train = json.loads(json.dumps(doc))
    del train["inference"]
    train["layers"][0]["label"]["top"] = "label"
    train["layers"][-1] = {"type": "BinaryCrossEntropyLoss", "bottom": ["fc3", "label"],
                           "top": "loss"}
    (tmp_path / "train.json").write_text(json.dumps(train))
    files = (str(tmp_path / "inf" / "_dense_10000.model"), True,
             [str(tmp_path / "inf" / "0_sparse_10000.model")])
    convert(str(tmp_path / "inf.onnx"), str(tmp_path / "inf" / "graph.json"), *files)
    convert(str(tmp_path / "train.onnx"), str(tmp_path / "train.json"), *files)
    feeds = _feeds(keys)
    inf = ort.InferenceSession(str(tmp_path / "inf.onnx")).run(["sigmoid"], feeds)[0]
    tr = ort.InferenceSession(str(tmp_path / "train.onnx")).run(["label"], feeds)[0]
    np.testing.assert_array_equal(inf, tr)
    assert inf.shape == (6, 1) and 0 < inf.min() and inf.max() < 1


@pytest.mark.parametrize("doc", [simple_inference_doc, old_dcn_inference_doc])
def test_cli_takes_the_files_from_the_inference_block(tmp_path, capsys, doc):
    """The block's paths (of the machine that served the model) do not exist here: the files
    of those names beside the JSON are used."""
    _write(doc(), tmp_path)
    out = tmp_path / "m.onnx"
    rc = main(["convert", "--graph", str(tmp_path / "graph.json"), "--convert-embedding",
               "-o", str(out), "--verify", "--batch", "8"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "sigmoid [8, 1]" in text and "100 keys x 2" in text
    rc = main(["verify", "--graph", str(tmp_path / "graph.json"), "--onnx", str(out)])
    assert rc == 0 and "sigmoid [64, 1]" in capsys.readouterr().out


def test_paths_as_written_win_when_they_exist(tmp_path, capsys):
    doc = simple_inference_doc()
    _write(doc, tmp_path / "real")
    doc["inference"]["dense_model_file"] = str(tmp_path / "real" / "_dense_10000.model")
    doc["inference"]["sparse_model_files"] = [str(tmp_path / "real" / "0_sparse_10000.model")]
    del doc["inference"]["sparse_model_file"]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "graph.json").write_text(json.dumps(doc))
    (tmp_path / "elsewhere" / "_dense_10000.model").write_bytes(b"\0" * 12)  # must not be read
    rc = main(["convert", "--graph", str(tmp_path / "elsewhere" / "graph.json"),
               "--convert-embedding", "-o", str(tmp_path / "m.onnx")])
    assert rc == 0, capsys.readouterr().err


def test_missing_inference_files_are_a_usage_error(tmp_path, capsys):
    doc = simple_inference_doc()
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    rc = main(["convert", "--graph", str(tmp_path / "graph.json"), "-o", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "/hugectr/test/utest/_dense_10000.model" in err and "beside" in err
    del doc["inference"]
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    rc = main(["convert", "--graph", str(tmp_path / "graph.json"), "-o", str(tmp_path / "m.onnx")])
    assert rc == 2 and "--dense is required" in capsys.readouterr().err


def test_every_unread_top_is_an_output(tmp_path):
    """Two heads and no loss: both final tops, in JSON order; FusedInnerProduct's mask and
    gradient tops are no outputs."""
    doc = simple_inference_doc()
    doc["layers"][-1] = {"type": "Sigmoid", "bottom": "fc3", "top": "ctr"}
    doc["layers"].append({"type": "InnerProduct", "bottom": "relu2", "top": "cvr_logit",
                          "fc_param": {"num_output": 2}})
    doc["layers"].append({"type": "FusedInnerProduct", "bottom": "relu1",
                          "top": ["f0", "f1", "f2", "f3"], "position": "Head",
                          "fc_param": {"num_output": 2}})
    g = parse_graph(doc, "doc", default_registry())
    assert [(o.name, o.shape[1:]) for o in g.outputs] == [("ctr", (1,)), ("cvr_logit", (2,)),
                                                          ("f0", (2,))]


def test_an_inference_graph_with_several_problems_reports_them_together():
    doc = simple_inference_doc()
    doc["layers"][4]["fc_param"] = {}  # fc1 without num_output
    doc["layers"][-1]["bottom"] = "nowhere"
    doc["layers"].append({"type": "ReLU", "bottom": "fc3", "top": "relu2"})
    with pytest.raises(GraphProblemsError) as info:
        parse_graph(doc, "doc", default_registry())
    text = str(info.value)
    assert "3 problems" in text and "fc_param.num_output" in text
    assert "'relu2' is produced more than once" in text and "'nowhere'" in text


@pytest.mark.parametrize("tail", [
    [("BatchNorm", "fc", "out", {"bn_param": {"eps": 1e-3, "factor": 0.9}})],  # folded
    [("Slice", "fc", ["a", "b"], {"ranges": [[0, 2], [1, 4]]})],  # two final tops
    [("FusedInnerProduct", "fc", ["h0", "h1", "h2", "h3"], {"fc_param": {"num_output": 3},
                                                            "position": "Head"})],
    [("MultiCross", "fc", "out", {"mc_param": {"num_layers": 2}})],
    [("Softmax", "fc", "out", {})],
], ids=["batchnorm", "slice", "fused_head", "multicross", "softmax"])
def test_final_layers_of_every_kind_are_outputs(roundtrip, tail):
    """No loss: each kind of last layer becomes an output named after its top, and matches
    the reference (with every intermediate, through the roundtrip fixture)."""
    from hugectr2onnx.hugectr.writer import ModelBuilder

    b = ModelBuilder().input(dense_dim=3).dense("InnerProduct", "dense", "fc",
                                                fc_param={"num_output": 4})
    for t, bottom, top, params in tail:
        b.dense(t, bottom, top, **params)
    report, graph, out, _ = roundtrip(b)
    tops = tail[-1][2]
    want = [tops] if isinstance(tops, str) else (tops[:1] if tail[-1][0] == "FusedInnerProduct"
                                                  else tops)
    assert [o.name for o in graph.outputs] == want
    assert sorted(o.name for o in report.outputs) == sorted(want)
    assert [o.name for o in ort.InferenceSession(str(out)).get_outputs()] == want

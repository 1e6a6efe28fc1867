"""verify: embedding mode from the model, NaN == NaN, PASS/FAIL, --json, the diverging layer."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hugectr2onnx import converter, zoo
from hugectr2onnx.cli import main
from hugectr2onnx.hugectr.writer import save_model


@pytest.fixture(scope="module")
def dcn(tmp_path_factory):
    d = tmp_path_factory.mktemp("dcn")
    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), d / "hugectr")
    with_tables, without = d / "keys.onnx", d / "vectors.onnx"
    converter.convert(str(with_tables), art.graph_config, art.dense_model, True,
                      art.sparse_models, art.ntp_file)
    converter.convert(str(without), art.graph_config, art.dense_model, False)
    return art, with_tables, without


def _verify(art, onnx_path, *extra, sparse=True):
    args = ["verify", "--graph", art.graph_config, "--dense", art.dense_model,
            "--onnx", str(onnx_path), "--batch", "16", *extra]
    if sparse:
        args += ["--sparse", *art.sparse_models]
    return main(args)


def test_mode_from_the_model_not_from_sparse(dcn, capsys):
    art, with_tables, without = dcn
    assert _verify(art, with_tables) == 0
    out = capsys.readouterr().out
    assert "looked up in the model" in out and out.strip().splitlines()[-1].startswith("PASS")
    # --sparse given for a model without tables: ignored, with a warning naming the input
    assert _verify(art, without) == 0
    out = capsys.readouterr().out
    assert "--sparse ignored" in out and "'sparse_embedding1'" in out and "fed as vectors" in out
    assert _verify(art, without, sparse=False) == 0
    capsys.readouterr()
    # tables in the model but no --sparse: a usage error naming the flag
    assert _verify(art, with_tables, sparse=False) == 2
    err = capsys.readouterr().err
    assert "--sparse" in err and "'data1'" in err


def _perturbed(src, dst, initializer, delta=0.5):
    model = onnx.load(str(src))
    init = next(i for i in model.graph.initializer if i.name == initializer)
    w = numpy_helper.to_array(init).copy()
    w.reshape(-1)[0] += delta
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, str(dst))
    return dst


@pytest.mark.parametrize("initializer,layer,kind", [
    ("fc2.W", "fc2", "InnerProduct"),
    ("multicross1.w1", "multicross1", "MultiCross"),
    ("sparse_embedding1.table", "sparse_embedding1", "DistributedSlotSparseEmbeddingHash"),
])
def test_perturbed_layer_is_named(dcn, tmp_path, capsys, initializer, layer, kind):
    art, with_tables, _ = dcn
    delta = 5.0 if initializer.endswith("table") else 0.5
    broken = _perturbed(with_tables, tmp_path / "broken.onnx", initializer, delta)
    if initializer.endswith("table"):  # row 0 is the zero row of unseen keys: bump them all
        model = onnx.load(str(broken))
        init = next(i for i in model.graph.initializer if i.name == initializer)
        w = numpy_helper.to_array(init) + np.float32(delta)
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float32), init.name))
        onnx.save(model, str(broken))
    assert _verify(art, broken) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("FAIL") and f"(top {layer})" in lines[-1]
    text = "\n".join(lines)
    assert f"type {kind}, tensor {layer}" in text and "|diff| histogram" in text
    assert _verify(art, broken, "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "FAIL" and doc["divergence"]["type"] == kind
    assert doc["divergence"]["tensor"] == layer and doc["divergence"]["diff"]["max_abs"] > 1e-3
    assert sum(n for _, n in doc["divergence"]["diff"]["histogram"]) == \
        doc["divergence"]["diff"]["total"]


def test_rtol_is_allclose(dcn, tmp_path, capsys):
    art, with_tables, _ = dcn
    broken = _perturbed(with_tables, tmp_path / "nudged.onnx", "fc3.b", 1e-4)
    assert _verify(art, broken, "--rtol", "0", "--atol", "1e-6") == 1
    assert _verify(art, broken, "--rtol", "1e-2", "--atol", "1e-6") == 0
    assert _verify(art, broken, "--rtol", "0", "--atol", "1e-3") == 0
    capsys.readouterr()


def _nan_model(tmp_path):
    b = (zoo.ModelBuilder().input(dense_dim=4)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 3})
         .dense("InnerProduct", "fc1", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    graph = b.graph()
    rng = np.random.default_rng(0)
    for layer in graph.layers:
        for name, spec in [(s.name, s) for s in _specs(layer)]:
            layer.weights[name] = rng.uniform(-1, 1, spec.shape).astype(np.float32)
    graph.layers[0].weights["W"][1, 2] = np.nan  # one output column of fc1 becomes NaN
    return save_model(b, tmp_path / "nan", graph=graph)


def _specs(layer):
    from hugectr2onnx.layers.base import default_registry

    return default_registry().get(layer.type).weight_specs(layer)


def test_nan_weights_pass_and_warn_once(tmp_path, capsys):
    art = _nan_model(tmp_path)
    out = tmp_path / "nan.onnx"
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(out), "--verify"])
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert rc == 0, text
    assert text.count("NaN/Inf") == 1 and "UserWarning" not in text
    assert text.strip().splitlines()[-1].startswith("PASS")
    rc = main(["verify", "--graph", art.graph_config, "--dense", art.dense_model,
               "--onnx", str(out)])
    cap = capsys.readouterr()
    assert rc == 0 and (cap.out + cap.err).count("NaN/Inf") == 1


def test_swapped_tables_warn(tmp_path, capsys):
    art = zoo.save(zoo.wdl(**dict(zoo.SMALL["wdl"], vec=1)), tmp_path / "wdl")
    swapped = list(reversed(art.sparse_models))
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *swapped, "--convert-embedding", "-o", str(tmp_path / "w.onnx")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "sparse model #0 (model1_sparse_0.model) is named as embedding #1" in text
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "--convert-embedding",
               "-o", str(tmp_path / "ok.onnx")])
    assert rc == 0 and "named as embedding" not in capsys.readouterr().out


def test_verify_on_dataset_samples(dcn, tmp_path, capsys):
    """--data: real samples, for a model with tables and for one fed embedding vectors
    (their keys looked up in --sparse by the reference)."""
    from hugectr2onnx.data import DataLayout
    from hugectr2onnx.data.writers import write_norm
    from hugectr2onnx.loader import load_model
    from hugectr2onnx.verify import random_feeds

    art, with_tables, without = dcn
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models)
    feeds = random_feeds(graph, 40, convert_embedding=True, seed=9)
    layout = DataLayout.from_onnx(with_tables)
    data = tmp_path / "samples.bin"
    write_norm(data, layout, np.zeros((40, 1), np.float32), feeds["dense"], [feeds["data1"]])
    for model in (with_tables, without):
        assert _verify(art, model, "--data", str(data), "--format", "norm", "--batch", "32") == 0
        out = capsys.readouterr().out
        assert f"verified batch 32 of {data}" in out and out.strip().endswith(
            "rtol 1e-05") and "PASS" in out.splitlines()[-1]
    assert _verify(art, without, "--data", str(data), "--format", "norm", sparse=False) == 2
    assert "--sparse" in capsys.readouterr().err


def test_layer_fused_by_the_passes_is_named_with_its_partner(tmp_path, capsys):
    """DLRM's InnerProduct -> BatchNorm pairs are one Gemm in the model: a perturbed folded
    weight is pinned to the BatchNorm and the InnerProduct fused into it."""
    art = zoo.save(zoo.dlrm(**zoo.SMALL["dlrm"]), tmp_path / "dlrm")
    path = tmp_path / "dlrm.onnx"
    converter.convert(str(path), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file)
    folded = sorted(i.name for i in onnx.load(str(path)).graph.initializer
                    if i.name.endswith(".W_bn"))
    assert folded, "no folded BatchNorm weight"
    fc = folded[0].split(".")[0]
    broken = _perturbed(path, tmp_path / "broken.onnx", folded[0])
    assert _verify(art, broken, "--json") == 1
    div = json.loads(capsys.readouterr().out)["divergence"]
    assert div["type"] == "BatchNorm"
    assert [(f["type"], f["label"].split("(top ")[1][:-1]) for f in div["fused_with"]] == \
        [("InnerProduct", fc)]
    assert _verify(art, broken) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("FAIL") and "BatchNorm" in last and \
        "fused in the model with layer" in last and f"InnerProduct (top {fc})" in last

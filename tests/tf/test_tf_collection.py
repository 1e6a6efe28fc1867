"""Embedding-collection models in TensorFlow: the DLRM-DCNv2-shaped model (26 static tables,
list-form sum lookups) and the mixed one (a dynamic table shared by an average and a concat
lookup). Each lookup and the predictions equal the numpy reference and the converted ONNX;
a shared table is one layer and one variable; ``fit`` lowers HugeCTR's loss; the SavedModel
serves the trained model; ``save_hugectr`` (embedding_dump + description) -> ``convert()``
equals it; ``to-tf --embedding-collection --verify`` passes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from hugectr2onnx import converter  # noqa: E402
from hugectr2onnx.cli import main  # noqa: E402
from hugectr2onnx.loader import load_model as load_ir  # noqa: E402
from hugectr2onnx.reference import embedding_reference, run_reference  # noqa: E402
from hugectr2onnx.tf import export_saved_model, load_model, save_hugectr  # noqa: E402
from hugectr2onnx.tf.api import SavedModelRunner  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from ebc_models import dlrm_dcnv2, mixed_model, write_model  # noqa: E402

BATCH = 32
ATOL = 1e-5
MODELS = {"dlrm_dcnv2": lambda: dlrm_dcnv2(ev=4, projection_dim=8), "mixed": mixed_model}


def run_onnx(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["label"], {i.name: feeds[i.name] for i in sess.get_inputs()})[0]


def predict(model, feeds):
    return model(feeds, training=False)["label"].numpy()


def collection_feeds(graph, seed):
    feeds = random_feeds(graph, BATCH, convert_embedding=True, seed=seed, unseen_fraction=0.3)
    if "user" in feeds:
        feeds["user"][0] = -1  # an empty average bag: zeros
        feeds["items"][1, 0, 1] = 123456789  # an unseen key inside a concat
    return feeds


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    builder, doc = MODELS[request.param]()
    art, desc, _ = write_model(d / "in", builder, doc)
    graph = load_ir(art.graph_config, art.dense_model, None, art.ntp_file,
                    embedding_collection=desc)
    converter.convert(str(d / "m.onnx"), art.graph_config, art.dense_model,
                      ntp_file=art.ntp_file, embedding_collection=desc)
    model = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                       embedding_collection=desc)
    return dict(name=request.param, dir=d, art=art, desc=desc, graph=graph, model=model,
                feeds=collection_feeds(graph, 3))


def test_lookups_and_predictions_equal_the_reference_and_onnx(case):
    graph, model, feeds = case["graph"], case["model"], case["feeds"]
    for emb, layer in zip(graph.embeddings, model.embedding_layers):
        got = layer(tf.constant(feeds[emb.bottom]), combiner=emb.combiner).numpy()
        want = embedding_reference(emb, feeds[emb.bottom])
        assert got.shape == want.shape == (BATCH, 1, emb.out_width)
        np.testing.assert_allclose(got, want, atol=ATOL, err_msg=emb.top)
    got = predict(model, feeds)
    np.testing.assert_allclose(got, run_reference(graph, feeds)["label"], atol=ATOL)
    np.testing.assert_allclose(got, run_onnx(case["dir"] / "m.onnx", feeds), atol=ATOL)
    tables = {id(layer) for layer in model.embedding_layers}
    if case["name"] == "mixed":  # the average and the concat lookup share one variable
        assert model.embedding_layers[0] is model.embedding_layers[1]
        assert len(tables) == 2
        names = [v.path for v in model.trainable_variables if "emb_vector" in v.path]
        assert len(names) == 2, names
        user = model.embedding_layers[0](tf.constant(feeds["user"]), combiner="mean").numpy()
        items = model.embedding_layers[1](tf.constant(feeds["items"]), combiner="concat").numpy()
        assert not user[0].any() and not items[1, 0, 6:12].any()
    else:
        assert len(tables) == 26


def test_fit_saved_model_and_write_back(case, tmp_path):
    model, feeds, graph = case["model"], case["feeds"], case["graph"]
    labels = {"label": np.random.default_rng(1).integers(0, 2, (BATCH, 1)).astype(np.float32)}
    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(0.01))
    before = float(model.hugectr_loss(feeds, labels, training=False))
    model.fit(feeds, labels, batch_size=BATCH, epochs=8, verbose=0)
    after = float(model.hugectr_loss(feeds, labels, training=False))
    assert after < before, (before, after)
    trained = predict(model, feeds)
    path = export_saved_model(model, tmp_path / "saved")
    served = SavedModelRunner(path).run(feeds)["label"]
    np.testing.assert_allclose(served, trained, atol=1e-6)
    out = save_hugectr(model, tmp_path / "out", prefix="ebc", iteration=8)
    assert out.sparse_models == [] and out.embedding_collection is not None
    converter.convert(str(tmp_path / "back.onnx"), out.graph_config, out.dense_model,
                      ntp_file=out.ntp_file, embedding_collection=out.embedding_collection)
    np.testing.assert_allclose(run_onnx(tmp_path / "back.onnx", feeds), trained, atol=ATOL)
    back = load_ir(out.graph_config, out.dense_model, None, out.ntp_file,
                   embedding_collection=out.embedding_collection)
    assert [e.table.num_keys for e in back.embeddings] == \
        [e.table.num_keys for e in graph.embeddings]  # the TF vocabulary is fixed
    if case["name"] == "mixed":
        assert back.embeddings[0].table is back.embeddings[1].table


def test_to_tf_command(case, tmp_path, capsys):
    art = case["art"]
    rc = main(["to-tf", "--graph", art.graph_config, "--dense", art.dense_model,
               "--embedding-collection", case["desc"], "-o", str(tmp_path / "sm"),
               "--verify", "--batch", "16"])
    text = capsys.readouterr().out
    assert rc == 0 and "wrote SavedModel" in text
    inputs = text.split("serving_default(")[1].split(")")[0].split(", ")
    assert inputs == ["dense"] + [e.bottom for e in case["graph"].embeddings]


def test_empty_dynamic_table_gives_zeros(tmp_path):
    """A dynamic table dumped with no rows: its lookups read zeros, traced or eager."""
    from hugectr2onnx.hugectr.dump_writer import write_embedding_dump

    builder, doc = mixed_model(ev=6)
    art, desc, tables = write_model(tmp_path, builder, doc)
    tables[0] = (np.zeros(0, np.int64), np.zeros((0, 6), np.float32))
    write_embedding_dump(tmp_path / "dump", tables, key_type="int64")
    graph = load_ir(art.graph_config, art.dense_model, None, art.ntp_file,
                    embedding_collection=desc)
    model = load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                       embedding_collection=desc)
    feeds = collection_feeds(graph, 2)
    items = model.embedding_layers[1](tf.constant(feeds["items"]), combiner="concat")
    assert items.shape == (BATCH, 1, 18) and not items.numpy().any()
    np.testing.assert_allclose(predict(model, feeds), run_reference(graph, feeds)["label"],
                               atol=ATOL)
    path = export_saved_model(model, tmp_path / "saved")
    np.testing.assert_allclose(SavedModelRunner(path).run(feeds)["label"],
                               predict(model, feeds), atol=1e-6)

"""The TensorFlow embedding's key semantics against hand values and the numpy reference,
dense-only models, losses on saturated logits, the CLI and the typed errors."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from hugectr2onnx import zoo  # noqa: E402
from hugectr2onnx.cli import main  # noqa: E402
from hugectr2onnx.errors import OutputError, UsageError  # noqa: E402
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model  # noqa: E402
from hugectr2onnx.ir import EmbeddingTable  # noqa: E402
from hugectr2onnx.reference import embedding_reference, run_reference  # noqa: E402
from hugectr2onnx.tf import export_saved_model, load_model, save_hugectr  # noqa: E402
from hugectr2onnx.tf.embedding import HugeCTREmbedding  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

TABLE = {"keys": np.array([-1, 7, 2 ** 62 + 5], np.int64),
         "vectors": np.array([[100, 100], [1, 2], [10, 20]], np.float32)}
KEYS = np.array([[[7, 2 ** 62 + 5, -1], [7, 999, -1]]], np.int64)  # 999 unseen, -1 padding


def _lookup(combiner, keys=KEYS, padding_key=-1):
    layer = HugeCTREmbedding(TABLE["keys"], TABLE["vectors"], slot_num=2, combiner=combiner,
                             padding_key=padding_key)
    return layer(tf.constant(keys)).numpy()[0]


def test_sum_skips_padding_even_when_it_is_a_trained_key():
    np.testing.assert_allclose(_lookup("sum"), [[11, 22], [1, 2]])


def test_mean_counts_unseen_keys_but_not_padding():
    np.testing.assert_allclose(_lookup("mean"), [[5.5, 11], [0.5, 1]])


def test_without_padding_key_minus_one_is_an_ordinary_key():
    np.testing.assert_allclose(_lookup("mean", padding_key=None),
                               [[111 / 3, 122 / 3], [101 / 3, 102 / 3]], rtol=1e-6)


def test_gradients_reach_only_the_rows_looked_up():
    layer = HugeCTREmbedding(TABLE["keys"], TABLE["vectors"], slot_num=2)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(tf.constant(KEYS)))
    (grad,) = tape.gradient(total, [layer.vectors.value])
    assert isinstance(grad, tf.IndexedSlices)  # sparse updates of large tables
    dense = tf.convert_to_tensor(grad).numpy()
    by_key = dict(zip(layer.keys.numpy().tolist(), dense[:, 0].tolist()))
    assert by_key == {-1: 0.0, 7: 2.0, 2 ** 62 + 5: 1.0}


def _repeated_localized_tables(emb, rng):
    """Each of 100 keys on both GPUs of a 2-GPU run with different vectors."""
    keys = rng.permutation(400)[:150].astype(np.int64)
    all_keys = np.concatenate([keys, keys[:100]])
    parity = np.concatenate([np.zeros(100, np.int64), rng.integers(0, 2, 50),
                             np.ones(100, np.int64)])
    slots = 2 * rng.integers(0, emb.slot_num // 2, all_keys.size) + parity
    return {"keys": all_keys, "slot_ids": slots.astype(np.uint64),
            "vectors": rng.uniform(-1, 1, (all_keys.size, emb.vec_size)).astype(np.float32)}


@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize("num_gpus", [1, 2])
def test_lookup_equals_reference(combiner, num_gpus):
    """Hashed keys, variable-length slots, unseen keys; Localized keys repeated per GPU."""
    rng = np.random.default_rng(num_gpus)
    graph = zoo.mmoe_parquet(**zoo.SMALL["mmoe_parquet"], num_gpus=2).graph()
    emb = graph.embeddings[0]
    emb.combiner = combiner
    if num_gpus == 2:
        t = _repeated_localized_tables(emb, rng)
    else:
        t = zoo.random_tables(graph, seed=3, hashed=True)[0]
    emb.table = EmbeddingTable(t["keys"], t["vectors"], t.get("slot_ids"))
    known = t["keys"][rng.integers(0, t["keys"].size, (64, emb.slot_num, 3))]
    keys = np.where(rng.random(known.shape) < 0.2, rng.integers(-2 ** 62, 2 ** 62, known.shape),
                    known)
    keys = np.where(np.arange(3) < rng.integers(0, 4, (64, emb.slot_num, 1)), keys, -1)
    layer = HugeCTREmbedding(t["keys"], t["vectors"], slot_num=emb.slot_num, combiner=combiner,
                             slot_ids=t.get("slot_ids"), num_gpus=num_gpus)
    want = embedding_reference(emb, keys, num_gpus=num_gpus)
    np.testing.assert_allclose(layer(tf.constant(keys)).numpy(), want, rtol=0, atol=1e-6)
    if num_gpus == 2:
        assert not np.allclose(want, embedding_reference(emb, keys, num_gpus=1))


def _saturating_model(tmp_path, kind="BinaryCrossEntropyLoss", width=1):
    b = (ModelBuilder().input(dense_dim=3, label_dim=width)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": width})
         .dense(kind, ["fc", "label"], "loss"))
    return save_model(b, tmp_path / kind)


@pytest.mark.parametrize("kind, width", [("BinaryCrossEntropyLoss", 1),
                                         ("CrossEntropyLoss", 2),
                                         ("MultiCrossEntropyLoss", 3)])
def test_compiled_loss_uses_logits_where_probabilities_saturate(tmp_path, kind, width):
    art = _saturating_model(tmp_path, kind, width)
    if kind == "MultiCrossEntropyLoss":  # the reader requires target_weight
        import json
        doc = json.loads(open(art.graph_config).read())
        doc["layers"][-1]["target_weight"] = [1.0, 0.5, 2.0]
        open(art.graph_config, "w").write(json.dumps(doc))
    model = load_model(art.graph_config, art.dense_model)
    rng = np.random.default_rng(0)
    feeds = {"dense": rng.normal(0, 1000, (16, 3)).astype(np.float32)}  # saturating logits
    labels = {"label": rng.integers(0, 2, (16, width if width != 2 else 1)).astype(np.float32)}
    model.compile("sgd")
    got = model.evaluate(feeds, labels, batch_size=16, verbose=0)
    exact = float(model.hugectr_loss(feeds, labels, training=False))
    np.testing.assert_allclose(got, exact, rtol=1e-5)  # fit/evaluate use the logits
    loss = model.hugectr_losses()["label"]
    eager = model(feeds)["label"]  # so does an eager training loop
    np.testing.assert_allclose(float(loss(labels["label"], eager)), exact, rtol=1e-5)
    bare = tf.constant(eager.numpy())  # a copy without its logits: clipped probabilities
    assert float(loss(labels["label"], bare)) < exact - 1


def test_dense_only_model_takes_embedding_vectors(tmp_path):
    art = zoo.save(zoo.wdl(**zoo.SMALL["wdl"]), tmp_path / "wdl")
    model = load_model(art.graph_config, art.dense_model)  # no sparse models
    assert sorted(model.input_specs()) == ["dense", "sparse_embedding1", "sparse_embedding2"]
    graph = model.graph
    feeds = random_feeds(graph, 8, convert_embedding=False)
    want = run_reference(graph, feeds)
    got = model(feeds)
    np.testing.assert_allclose(got["label"].numpy(), want["label"], rtol=0, atol=1e-5)
    serve = tf.saved_model.load(export_saved_model(model, tmp_path / "sm")).signatures[
        "serving_default"]
    served = serve(**{k: tf.constant(v) for k, v in feeds.items()})
    np.testing.assert_allclose(served["label"].numpy(), want["label"], rtol=0, atol=1e-5)
    with pytest.raises(UsageError, match="no tables"):
        save_hugectr(model, tmp_path / "back")


def test_export_refuses_to_replace_a_file(tmp_path):
    art = _saturating_model(tmp_path)
    model = load_model(art.graph_config, art.dense_model)
    target = tmp_path / "taken"
    target.write_text("not a SavedModel")
    with pytest.raises(OutputError, match="not a SavedModel"):
        export_saved_model(model, target)
    assert target.read_text() == "not a SavedModel"


def test_cli_to_tf_writes_and_verifies_a_saved_model(tmp_path, capsys):
    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), tmp_path / "dcn", hashed=True)
    out = tmp_path / "dcn_saved_model"
    rc = main(["to-tf", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "-o", str(out), "--verify", "--batch", "16"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "serving_default(dense, data1) -> label" in text and "ok" in text
    assert (out / "saved_model.pb").exists()


def test_cli_to_tf_bad_input_is_one_line(tmp_path, capsys):
    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), tmp_path / "dcn")
    with open(art.dense_model, "ab") as f:
        f.write(b"\0" * 4)
    rc = main(["to-tf", "--graph", art.graph_config, "--dense", art.dense_model,
               "-o", str(tmp_path / "sm")])
    err = capsys.readouterr().err
    assert rc == 3 and len(err.strip().splitlines()) == 1 and art.dense_model in err
    assert not (tmp_path / "sm").exists()


def test_training_mode_drops_and_updates_batchnorm_statistics(tmp_path):
    """A Keras model in training mode: Dropout drops; fit moves BatchNorm's running
    statistics (the ntp tensors, non-trainable) by HugeCTR's factor."""
    art = zoo.save(zoo.dlrm(**zoo.SMALL["dlrm"]), tmp_path / "dlrm", hashed=True)
    model = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(model.graph, 16, convert_embedding=True)
    bn = next(l for l in model.graph_layers if l.hugectr_layer.type == "BatchNorm")
    assert not bn.params["mean"].trainable and bn.params["gamma"].trainable
    before = bn.params["mean"].numpy().copy()
    model.compile("sgd")
    model.fit(feeds, {"label": np.ones((16, 1), np.float32)}, batch_size=16, verbose=0)
    assert not np.allclose(bn.params["mean"].numpy(), before)
    infer = [model(feeds, training=False)["label"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(*infer)  # inference is deterministic

    art = zoo.save(zoo.ncf(**zoo.SMALL["ncf"]), tmp_path / "ncf", hashed=True)  # Dropout 0.5
    model = load_model(art.graph_config, art.dense_model, art.sparse_models)
    feeds = random_feeds(model.graph, 16, convert_embedding=True)
    train = [model(feeds, training=True)["label"].numpy() for _ in range(2)]
    assert not np.allclose(*train)


def test_label_weights_weigh_the_multi_task_loss(tmp_path):
    art = zoo.save(zoo.mmoe_parquet(**zoo.SMALL["mmoe_parquet"]), tmp_path / "mmoe", hashed=True)
    load = lambda **kw: load_model(art.graph_config, art.dense_model, art.sparse_models, **kw)  # noqa: E731
    plain, weighted = load(), load(label_weights={"married_label": 3.0})
    feeds = random_feeds(plain.graph, 16, convert_embedding=True)
    rng = np.random.default_rng(0)
    labels = {n: rng.integers(0, 2, (16, 1)).astype(np.float32)
              for n in ("50k_label", "married_label")}
    total = float(plain.hugectr_loss(feeds, labels, training=False))
    married = total - float(load(label_weights={"married_label": 0.0})
                            .hugectr_loss(feeds, labels, training=False))
    assert married > 0.1
    np.testing.assert_allclose(float(weighted.hugectr_loss(feeds, labels, training=False)),
                               total + 2 * married, rtol=1e-5)
    with pytest.raises(UsageError, match="label_weights"):
        load(label_weights={"nope": 1.0})


def test_bad_inputs_are_usage_errors(tmp_path):
    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), tmp_path / "dcn", hashed=True)
    model = load_model(art.graph_config, art.dense_model, art.sparse_models)
    feeds = random_feeds(model.graph, 4, convert_embedding=True)
    with pytest.raises(UsageError, match="missing input 'data1'"):
        model({"dense": feeds["dense"]})
    with pytest.raises(UsageError, match="must be an integer array"):
        model({**feeds, "data1": feeds["data1"].astype(np.float64)})
    as_int32 = model({**feeds, "data1": feeds["data1"].astype(np.int32)})  # widened
    assert as_int32["label"].shape == (4, 1)


@pytest.mark.parametrize("kind", ["L1", "L2"])
def test_regularizer_adds_hugectrs_rterm_in_fit_and_eager(kind, tmp_path):
    b = (ModelBuilder().input(label_dim=1, label_name="label", dense_dim=3)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 4})
         .dense("InnerProduct", "fc1", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss", regularizer=kind,
                **{"lambda": 0.3}))
    art = save_model(b, tmp_path)
    model = load_model(art.graph_config, art.dense_model)
    x = {"dense": np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)}
    y = {"label": np.ones((6, 1), np.float32)}
    plain = -np.log(model(x)["label"].numpy().astype(np.float64)).mean()
    w = np.concatenate([v.numpy().reshape(-1) for v in model.trainable_weights])
    assert w.size == 3 * 4 + 4 + 4 + 1
    term = 0.3 / 12 * (w.astype(np.float64) ** 2).sum() if kind == "L2" else 0.3 / 6 * np.abs(w).sum()
    np.testing.assert_allclose(float(model.hugectr_loss(x, y, training=False)), plain + term,
                               rtol=1e-5)
    model.compile("sgd")
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=6, verbose=0), plain + term,
                               rtol=1e-5)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras' h5
def test_keras_weights_checkpoint_restores_a_trained_model(tmp_path):
    art = zoo.save(zoo.dlrm(**zoo.SMALL["dlrm"]), tmp_path / "dlrm", hashed=True)
    load = lambda: load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)  # noqa: E731
    model = load()
    feeds = random_feeds(model.graph, 8, convert_embedding=True)
    model.compile("adam")
    model.fit(feeds, {"label": np.ones((8, 1), np.float32)}, epochs=3, verbose=0)
    model.save_weights(tmp_path / "trained.weights.h5")
    fresh = load()
    before = fresh(feeds)["label"].numpy()
    fresh.load_weights(tmp_path / "trained.weights.h5")
    want = model(feeds)["label"].numpy()
    assert np.abs(before - want).max() > 1e-4
    np.testing.assert_array_equal(fresh(feeds)["label"].numpy(), want)


VARIANTS = {  # beyond the zoo defaults: multi-hot slots, DCN-v2, Localized tables on 2 GPUs
    "wdl_mean_multi_hot": lambda: zoo.wdl(**{**zoo.SMALL["wdl"], "nnz": 3, "fixed": False,
                                             "combiner": "mean"}),
    "deepfm_sum_multi_hot": lambda: zoo.deepfm(**{**zoo.SMALL["deepfm"], "nnz": 3,
                                                  "fixed": False}),
    "dcn_v2": lambda: zoo.dcn(**{**zoo.SMALL["dcn"], "projection_dim": 3}),
    "mmoe_localized_2_gpus": lambda: zoo.mmoe_parquet(**{**zoo.SMALL["mmoe_parquet"],
                                                         "num_gpus": 2}),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_serve_like_onnx(name, tmp_path):
    import onnxruntime as ort

    from hugectr2onnx import converter

    saved, graph, tables = zoo.random_model(VARIANTS[name](), seed=2, hashed=True)
    if graph.embeddings[0].localized:
        tables = [_repeated_localized_tables(graph.embeddings[0], np.random.default_rng(4))]
    art = save_model(saved, tmp_path, graph=graph, tables=tables)
    converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model, True,
                      art.sparse_models, art.ntp_file)
    model = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(model.graph, 32, convert_embedding=True, seed=3)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    serve = tf.saved_model.load(export_saved_model(model, tmp_path / "sm")).signatures[
        "serving_default"]
    served = serve(**{k: tf.constant(v) for k, v in feeds.items()})
    for label, w in want.items():
        np.testing.assert_allclose(served[label].numpy(), w, rtol=0, atol=1e-5, err_msg=label)


def test_saved_model_stores_each_table_once(tmp_path):
    builder = (ModelBuilder().input(dense_dim=1, sparse=[dict(top="s", slot_num=2)])
               .embedding(bottom="s", top="e", vec_size=64)
               .dense("Reshape", "e", "r", leading_dim=128)
               .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
               .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(-2 ** 62, 2 ** 62, 20000))
    art = save_model(builder, tmp_path, tables=[{"keys": keys, "vectors": rng.standard_normal(
        (keys.size, 64)).astype(np.float32)}])
    model = load_model(art.graph_config, art.dense_model, art.sparse_models)
    path = export_saved_model(model, tmp_path / "sm")
    stored = sum(f.stat().st_size for f in (tmp_path / "sm" / "variables").iterdir())
    table = keys.size * (64 * 4 + 8)
    assert table < stored < 1.1 * table
    feeds = random_feeds(model.graph, 8, convert_embedding=True)
    served = tf.saved_model.load(path).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in feeds.items()})
    np.testing.assert_allclose(served["label"].numpy(), model(feeds)["label"].numpy(), atol=1e-6)

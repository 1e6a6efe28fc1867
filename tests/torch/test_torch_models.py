"""Every zoo architecture with hashed 64-bit keys, in PyTorch: predictions equal the ONNX
model's; 20 training steps lower the loss; the trained module written back as HugeCTR files
and converted again gives an ONNX model equal to the module, keys new in training included."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

import hugectr2onnx.torch as ht  # noqa: E402
from hugectr2onnx import converter, zoo  # noqa: E402
from hugectr2onnx.hugectr.sparse import load_table  # noqa: E402
from hugectr2onnx.loader import load_model as load_ir  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

BATCH = 32
ATOL = 1e-5


def run_onnx(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {i.name: feeds[i.name] for i in sess.get_inputs()})))


def predict(module, feeds):
    module.eval()
    with torch.no_grad():
        return {k: v.numpy() for k, v in module(**feeds).items()}


def eval_loss(module, feeds, labels) -> float:
    """The loss without dropout noise (eval mode)."""
    module.eval()
    with torch.no_grad():
        return module.loss(feeds, labels).item()


def labels_for(graph, rng):
    return {n: rng.integers(0, 2, (BATCH, dim)).astype(np.float32)
            for n, dim in zip(graph.data.label_names, graph.data.label_dims)}


@pytest.mark.parametrize("name", sorted(zoo.SMALL))
def test_zoo_model_predicts_trains_and_round_trips(name, tmp_path):
    torch.manual_seed(0)
    art = zoo.save(getattr(zoo, name)(**zoo.SMALL[name]), tmp_path / "in", hashed=True)
    graph = load_ir(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(graph, BATCH, convert_embedding=True, seed=3, unseen_fraction=0.3)
    module = ht.load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file,
                           max_new_keys=1000)

    # 1. predictions equal the ONNX model converted from the same files
    converter.convert(str(tmp_path / "in.onnx"), art.graph_config, art.dense_model, True,
                      art.sparse_models, art.ntp_file)
    want, got = run_onnx(tmp_path / "in.onnx", feeds), predict(module, feeds)
    assert sorted(got) == sorted(want) == sorted(o.name for o in graph.outputs)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=ATOL, err_msg=k)

    # 2. 20 steps of a plain torch loop lower HugeCTR's loss
    rng = np.random.default_rng(0)
    labels = labels_for(graph, rng)
    known = [int(e.num_keys) for e in module.embeddings.values()]
    opt = torch.optim.Adam(module.parameters(), lr=0.02)
    before = eval_loss(module, feeds, labels)
    module.train()
    for _ in range(20):
        opt.zero_grad()
        loss = module.loss(feeds, labels)
        loss.backward()
        opt.step()
    after = eval_loss(module, feeds, labels)
    assert after < 0.97 * before, (before, after)
    grown = [int(e.num_keys) for e in module.embeddings.values()]
    assert all(g > k for g, k in zip(grown, known)), "unseen keys got no rows in training"

    # 3. written back as HugeCTR files and converted again: the ONNX equals the module
    out = ht.save_hugectr(module, tmp_path / "out", prefix=name, iteration=20)
    converter.convert(str(tmp_path / "out.onnx"), out.graph_config, out.dense_model, True,
                      out.sparse_models, out.ntp_file)
    want, got = run_onnx(tmp_path / "out.onnx", feeds), predict(module, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=ATOL, err_msg=k)

    # 4. the new keys are in the written tables, and the module reloads to the same answers
    for emb, path, before in zip(graph.embeddings, out.sparse_models, known):
        table = load_table(path, emb, "I64")
        assert table.num_keys > before
        seen = np.unique(feeds[emb.bottom])
        seen = seen[seen != -1]
        assert np.isin(seen, table.keys).all(), "a key seen in training is missing"
    again = ht.load_model(out.graph_config, out.dense_model, out.sparse_models, out.ntp_file,
                          max_new_keys=0)
    for k, v in predict(again, feeds).items():
        np.testing.assert_allclose(v, got[k], rtol=0, atol=ATOL, err_msg=k)


def test_localized_keys_repeated_across_gpus_round_trip(tmp_path):
    """Two GPUs' Localized tables hold the same keys with different rows: each slot reads its
    GPU's row; new keys take their slot as slot_id, and the converter reads them back."""
    from hugectr2onnx.hugectr.writer import ModelBuilder, save_model

    b = (ModelBuilder().input(dense_dim=2, sparse=[dict(top="s", slot_num=4, nnz_per_slot=2,
                                                        is_fixed_length=False)])
         .embedding(bottom="s", top="e", vec_size=3, combiner="mean",
                    type="LocalizedSlotSparseEmbeddingHash", num_gpus=2)
         .dense("Reshape", "e", "r", leading_dim=12)
         .dense("Concat", ["r", "dense"], "c")
         .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    rng = np.random.default_rng(0)
    keys = np.concatenate([np.arange(50), np.arange(50)]).astype(np.int64)
    slot_ids = np.concatenate([np.zeros(50), np.ones(50)]).astype(np.uint64)  # GPU 0 and 1
    table = {"keys": keys, "vectors": rng.uniform(-1, 1, (100, 3)).astype(np.float32),
             "slot_ids": slot_ids}
    art = save_model(b, tmp_path / "in", tables=[table])
    graph = load_ir(art.graph_config, art.dense_model, art.sparse_models)
    feeds = random_feeds(graph, BATCH, convert_embedding=True, seed=1, unseen_fraction=0.3)
    feeds["s"] = np.where(feeds["s"] >= 0, feeds["s"] % 80, feeds["s"])  # 50..79 are new
    module = ht.load_model(art.graph_config, art.dense_model, art.sparse_models,
                           max_new_keys=200)
    assert module.embeddings["e"].num_gpus == 2
    converter.convert(str(tmp_path / "in.onnx"), art.graph_config, art.dense_model, True,
                      art.sparse_models)
    want, got = run_onnx(tmp_path / "in.onnx", feeds), predict(module, feeds)
    np.testing.assert_allclose(got["label"], want["label"], rtol=0, atol=ATOL)

    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        module.loss(feeds, np.ones((BATCH, 1), np.float32)).backward()
        opt.step()
    out = ht.save_hugectr(module, tmp_path / "out")
    t = load_table(out.sparse_models[0], graph.embeddings[0], "I64")
    new = t.keys >= 50
    assert new.any() and (t.keys[new] < 80).all()
    slots = np.asarray(t.slot_ids[new]).astype(np.int64)
    assert ((slots >= 0) & (slots < 4)).all()
    converter.convert(str(tmp_path / "out.onnx"), out.graph_config, out.dense_model, True,
                      out.sparse_models, num_gpus=2)
    want, got = run_onnx(tmp_path / "out.onnx", feeds), predict(module, feeds)
    np.testing.assert_allclose(got["label"], want["label"], rtol=0, atol=ATOL)

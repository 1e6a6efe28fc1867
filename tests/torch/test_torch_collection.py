"""Embedding-collection models in PyTorch: the DLRM-DCNv2-shaped model (26 static tables,
list-form sum lookups) and the mixed one (a dynamic table shared by an average and a concat
lookup). Predictions equal the numpy reference and the converted ONNX; each lookup equals
the reference lookup; shared tables are one module; training lowers the loss and adds keys
to the dynamic table; written back (embedding_dump + description), convert() equals the
trained module; the checkpoint and ``to-torch`` carry the collection."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

import hugectr2onnx.torch as ht  # noqa: E402
from hugectr2onnx import converter  # noqa: E402
from hugectr2onnx.cli import main  # noqa: E402
from hugectr2onnx.errors import UsageError  # noqa: E402
from hugectr2onnx.loader import load_model as load_ir  # noqa: E402
from hugectr2onnx.reference import embedding_reference, run_reference  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from ebc_models import dlrm_dcnv2, mixed_model, write_model  # noqa: E402

BATCH = 32
ATOL = 1e-5
MODELS = {"dlrm_dcnv2": lambda: dlrm_dcnv2(ev=4, projection_dim=8), "mixed": mixed_model}


def run_onnx(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {"label": sess.run(["label"], {i.name: feeds[i.name] for i in sess.get_inputs()})[0]}


def predict(module, feeds):
    module.eval()
    with torch.no_grad():
        return module(**feeds)["label"].numpy()


def collection_feeds(graph, seed):
    feeds = random_feeds(graph, BATCH, convert_embedding=True, seed=seed, unseen_fraction=0.3)
    if "user" in feeds:
        feeds["user"][0] = -1  # an empty average bag: zeros
        feeds["items"][1, 0, 1] = 123456789  # an unseen key inside a concat
    return feeds


@pytest.fixture(params=sorted(MODELS))
def written(request, tmp_path):
    builder, doc = MODELS[request.param]()
    art, desc, tables = write_model(tmp_path / "in", builder, doc)
    graph = load_ir(art.graph_config, art.dense_model, None, art.ntp_file,
                    embedding_collection=desc)
    return request.param, art, desc, graph


def test_lookups_and_predictions_equal_the_reference_and_onnx(written, tmp_path):
    name, art, desc, graph = written
    module = ht.load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                           embedding_collection=desc)
    feeds = collection_feeds(graph, 3)
    module.eval()
    for emb, key in zip(graph.embeddings, module.embedding_keys):
        with torch.no_grad():
            got = module.embeddings[key](torch.as_tensor(feeds[emb.bottom]), emb.combiner)
        want = embedding_reference(emb, feeds[emb.bottom])
        assert got.shape == want.shape == (BATCH, 1, emb.out_width)
        np.testing.assert_allclose(got.numpy(), want, atol=ATOL, err_msg=emb.top)
    np.testing.assert_allclose(predict(module, feeds), run_reference(graph, feeds)["label"],
                               atol=ATOL)
    converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model,
                      ntp_file=art.ntp_file, embedding_collection=desc)
    np.testing.assert_allclose(predict(module, feeds),
                               run_onnx(tmp_path / "m.onnx", feeds)["label"], atol=ATOL)
    if name == "mixed":  # the average and the concat lookup read one table, one parameter
        assert module.embedding_keys == ["ebc_hashed", "ebc_hashed", "ebc_cats"]
        assert len(module.embeddings) == 2
        hashed = graph.embeddings[0].table.num_keys
        assert module.embeddings["ebc_hashed"].capacity >= 2 * hashed  # dynamic: room to grow
        assert module.embeddings["ebc_cats"].capacity == 50  # static: its vocabulary
        with torch.no_grad():
            e_user = module.embeddings["ebc_hashed"](torch.as_tensor(feeds["user"]), "mean")
            e_items = module.embeddings["ebc_hashed"](torch.as_tensor(feeds["items"]), "concat")
        assert not e_user[0].any() and not e_items[1, 0, 6:12].any()
    else:
        assert len(module.embeddings) == 26


def test_training_and_write_back(written, tmp_path):
    name, art, desc, graph = written
    torch.manual_seed(0)
    module = ht.load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                           embedding_collection=desc, max_new_keys=500)
    feeds = collection_feeds(graph, 4)
    labels = np.random.default_rng(1).integers(0, 2, (BATCH, 1)).astype(np.float32)
    shared = list(module.embeddings.values())[0].weight
    before = module.loss(feeds, labels).item()
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    module.train()
    for _ in range(15):
        opt.zero_grad()
        module.loss(feeds, labels).backward()
        opt.step()
    module.eval()
    with torch.no_grad():
        after = module.loss(feeds, labels).item()
    assert after < before
    assert list(module.embeddings.values())[0].weight is shared
    if name == "mixed":  # keys first seen in training got rows in the dynamic table
        added = int(module.embeddings["ebc_hashed"].num_keys) - graph.embeddings[0].table.num_keys
        assert added > 0
    out = ht.save_hugectr(module, tmp_path / "out", prefix="ebc", iteration=15)
    assert out.sparse_models == [] and out.embedding_collection.endswith("ebc_ebc_15.json")
    converter.convert(str(tmp_path / "back.onnx"), out.graph_config, out.dense_model,
                      ntp_file=out.ntp_file, embedding_collection=out.embedding_collection)
    np.testing.assert_allclose(run_onnx(tmp_path / "back.onnx", feeds)["label"],
                               predict(module, feeds), atol=ATOL)
    back = load_ir(out.graph_config, out.dense_model, None, out.ntp_file,
                   embedding_collection=out.embedding_collection)
    for emb, key in zip(back.embeddings, module.embedding_keys):
        assert emb.table.num_keys == int(module.embeddings[key].num_keys)
    if name == "mixed":
        assert back.embeddings[0].table is back.embeddings[1].table
        new = set(feeds["user"].ravel().tolist()) - {-1}
        assert new <= set(np.asarray(back.embeddings[0].table.keys).tolist())


def test_checkpoint_and_to_torch_keep_the_collection(written, tmp_path, capsys):
    name, art, desc, graph = written
    ckpt = tmp_path / "m.pt"
    rc = main(["to-torch", "--graph", art.graph_config, "--dense", art.dense_model,
               "--embedding-collection", desc, "-o", str(ckpt)])
    assert rc == 0 and "ebc_" in capsys.readouterr().out
    module = ht.load_checkpoint(ckpt)
    feeds = collection_feeds(graph, 5)
    np.testing.assert_allclose(predict(module, feeds), run_reference(graph, feeds)["label"],
                               atol=ATOL)
    rc = main(["from-torch", str(ckpt), "-o", str(tmp_path / "out")])
    assert rc == 0
    desc_out = str(tmp_path / "out" / "model_ebc_0.json")
    assert f"embedding collection: {desc_out}" in capsys.readouterr().out
    back = load_ir(str(tmp_path / "out" / "model.json"),
                   str(tmp_path / "out" / "model_dense_0.model"), None, None,
                   embedding_collection=desc_out)
    np.testing.assert_allclose(run_reference(back, feeds)["label"],
                               run_reference(graph, feeds)["label"], atol=ATOL)


def test_collection_beside_a_legacy_embedding(tmp_path):
    """A SparseEmbedding beside the collection: its table goes to a sparse folder, the
    collection's to the dump; both convert back to the module's predictions."""
    b, doc = mixed_model(ev=3)
    b.data["sparse"].insert(1, {"top": "legacy", "slot_num": 2, "nnz_per_slot": [2, 2],
                                "is_fixed_length": True, "type": "DistributedSlot"})
    b.embedding(bottom="legacy", top="e_legacy", vec_size=4)
    b.dense("Reshape", "e_legacy", "r_legacy", leading_dim=8, time_step=0)
    concat = next(l for l in b.dense_layers if l["top"] == "all")
    concat["bottom"] = concat["bottom"] + ["r_legacy"]
    art, desc, _ = write_model(tmp_path / "in", b, doc)
    with pytest.raises(UsageError, match="need sparse_models besides the embedding collection"):
        ht.load_model(art.graph_config, art.dense_model, None, art.ntp_file,
                      embedding_collection=desc)
    module = ht.load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file,
                           embedding_collection=desc)
    assert module.embedding_keys == ["e_legacy", "ebc_hashed", "ebc_hashed", "ebc_cats"]
    graph = load_ir(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file,
                    embedding_collection=desc)
    feeds = collection_feeds(graph, 6)
    np.testing.assert_allclose(predict(module, feeds), run_reference(graph, feeds)["label"],
                               atol=ATOL)
    out = ht.save_hugectr(module, tmp_path / "out")
    assert len(out.sparse_models) == 1 and out.embedding_collection is not None
    converter.convert(str(tmp_path / "back.onnx"), out.graph_config, out.dense_model, True,
                      out.sparse_models, out.ntp_file,
                      embedding_collection=out.embedding_collection)
    np.testing.assert_allclose(run_onnx(tmp_path / "back.onnx", feeds)["label"],
                               predict(module, feeds), atol=ATOL)

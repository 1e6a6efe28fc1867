"""export -> optimize (fp32, fp16) -> run on tiny BERT-family models; PyTorch is the oracle
for every output, computed here independently of the exported wrapper."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import transformers

from hugectr2onnx import hf
from hugectr2onnx.hf.checks import SHAPES

# kind -> (task export resolves with auto, expected outputs)
ARCHS = {
    "bert-mlm": ("masked-lm", ["logits"]),
    "bert": ("feature-extraction", ["last_hidden_state", "pooler_output"]),
    "distilbert": ("feature-extraction", ["last_hidden_state"]),
    "roberta": ("masked-lm", ["logits"]),
}
TEXTS = ["the cat sat on the mat", "sparse and dense vector search for this query document"]


def torch_splade(model_dir, texts):
    """SPLADE weights straight from the PyTorch masked-LM: max_t log(1 + relu(logits))."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    w = torch.log1p(torch.relu(logits)) * enc["attention_mask"][..., None]
    return tok, w.max(dim=1).values.numpy()


def torch_embeddings(model_dir, texts):
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    e = (hidden * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(e, dim=-1).numpy()


def expected_terms(tok, weights, k):
    """Top-k (token, weight) per row by a full sort, positive weights only."""
    out = []
    for row in weights:
        ids = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        out.append([(t, w) for t, w in zip(tok.convert_ids_to_tokens(ids), row[ids]) if w > 0])
    return out


@pytest.mark.parametrize("kind", list(ARCHS))
def test_whole_workflow(kind, tiny_models, tmp_path):
    d = tiny_models(kind)
    task, outputs = ARCHS[kind]
    rep = hf.export(d, tmp_path / "m.onnx")
    assert rep.task == task and rep.outputs == outputs and rep.exporter == "torchscript"
    assert rep.validation.ok and len(rep.validation.diffs) == len(SHAPES) * len(outputs)
    assert rep.validation.max_abs_diff < 1e-4

    model = onnx.load(str(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    config = transformers.AutoConfig.from_pretrained(d)
    assert props["model_type"] == config.model_type and props["task"] == task
    assert int(props["hidden_size"]) == (getattr(config, "hidden_size", None) or config.dim)
    assert int(props["num_heads"]) == 4 and props["source_model"] == str(d)
    for inp in model.graph.input:  # batch and sequence are symbolic
        dims = inp.type.tensor_type.shape.dim
        assert [x.dim_param for x in dims] == ["batch", "sequence"], inp.name

    opt = hf.optimize(tmp_path / "m.onnx", tmp_path / "opt.onnx")
    assert opt.validation.ok and opt.after.nodes < opt.before.nodes
    assert opt.fused.get("SkipLayerNormalization", 0) > 0
    half = hf.optimize(tmp_path / "m.onnx", tmp_path / "half.onnx", fp16=True)
    assert half.validation.ok and half.fp16
    fp16_model = onnx.load(str(tmp_path / "half.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in fp16_model.graph.initializer)
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # keep_io_types
               for i in fp16_model.graph.output)

    if task == "feature-extraction":
        for path in ("m.onnx", "opt.onnx"):
            meta, results = hf.predict(tmp_path / path, TEXTS)
            got = np.stack([r.embedding for r in results])
            np.testing.assert_allclose(got, torch_embeddings(d, TEXTS), atol=1e-5)
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kind", ["bert-mlm", "distilbert-mlm", "roberta"])
def test_splade_top_terms_equal_pytorch(kind, tiny_models, tmp_path):
    d = tiny_models(kind)
    rep = hf.export(d, tmp_path / "s.onnx", task="splade")
    assert rep.outputs == ["sparse_vector"] and rep.validation.ok
    tok = transformers.AutoTokenizer.from_pretrained(d)
    out = onnx.load(str(tmp_path / "s.onnx")).graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "batch" and out[1].dim_value == len(tok)
    hf.optimize(tmp_path / "s.onnx", tmp_path / "s-opt.onnx")
    _, weights = torch_splade(d, TEXTS)
    want = expected_terms(tok, weights, 10)
    for path in ("s.onnx", "s-opt.onnx"):
        meta, results = hf.predict(tmp_path / path, TEXTS, top_k=10)
        assert meta.task == "splade"
        for res, exp in zip(results, want):
            assert [t for t, _ in res.terms] == [t for t, _ in exp]
            np.testing.assert_allclose([w for _, w in res.terms], [w for _, w in exp],
                                       atol=1e-4)


def test_masked_lm_run_predicts_each_mask(tiny_models, tmp_path):
    d = tiny_models("bert-mlm")
    hf.export(d, tmp_path / "m.onnx")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    text = f"the cat {tok.mask_token} on the {tok.mask_token}"
    model = transformers.AutoModelForMaskedLM.from_pretrained(d).eval()
    enc = tok([text], return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model(**enc).logits[0], -1)
    positions = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten()
    _, (res,) = hf.predict(tmp_path / "m.onnx", [text], top_k=3)
    assert len(res.masks) == 2
    for preds, pos in zip(res.masks, positions):
        top = torch.topk(probs[pos], 3)
        assert [t for t, _ in preds] == tok.convert_ids_to_tokens(top.indices.tolist())
        np.testing.assert_allclose([p for _, p in preds], top.values.numpy(), atol=1e-5)


def test_sequence_classification_labels(tiny_models, tmp_path):
    d = tiny_models("bert-cls")
    rep = hf.export(d, tmp_path / "c.onnx")
    assert rep.task == "sequence-classification" and rep.outputs == ["logits"]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(d).eval()
    tok = transformers.AutoTokenizer.from_pretrained(d)
    with torch.no_grad():
        probs = torch.softmax(model(**tok(TEXTS, padding=True, return_tensors="pt")).logits, -1)
    _, results = hf.predict(tmp_path / "c.onnx", TEXTS, top_k=3)
    for res, p in zip(results, probs):
        best = int(p.argmax())
        assert res.terms[0][0] == model.config.id2label[best]
        assert res.terms[0][1] == pytest.approx(float(p[best]), abs=1e-5)


def test_dynamo_exporter(tiny_models, tmp_path):
    d = tiny_models("bert-mlm")
    rep = hf.export(d, tmp_path / "d.onnx", exporter="dynamo", task="splade")
    assert rep.exporter == "dynamo" and rep.opset >= 18 and rep.validation.ok
    assert hf.read_metadata(tmp_path / "d.onnx").exporter == "dynamo"
    tok, weights = torch_splade(d, TEXTS)
    _, results = hf.predict(tmp_path / "d.onnx", TEXTS, top_k=10)
    for res, exp in zip(results, expected_terms(tok, weights, 10)):
        assert [t for t, _ in res.terms] == [t for t, _ in exp]


def test_external_data(tiny_models, tmp_path):
    d = tiny_models("bert")
    rep = hf.export(d, tmp_path / "x.onnx", external_data=True)
    assert rep.external_data and rep.validation.ok
    data = tmp_path / "x.onnx.data"
    model = onnx.load(str(tmp_path / "x.onnx"), load_external_data=False)
    weights = sum(1 for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
    assert weights > 0 and data.stat().st_size > (tmp_path / "x.onnx").stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.onnx", "x.onnx.data"]
    opt = hf.optimize(tmp_path / "x.onnx", tmp_path / "y.onnx")
    assert opt.validation.ok


def test_model_from_local_cache_by_name(tiny_models, tmp_path, monkeypatch):
    """The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<rev>/}."""
    import shutil

    import huggingface_hub.constants as constants
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny--bert-mlm"
    shutil.copytree(tiny_models("bert-mlm"), repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    src = hf.resolve("tiny/bert-mlm")
    assert src.revision == rev and src.path == repo / "snapshots" / rev
    rep = hf.export("tiny/bert-mlm", tmp_path / "c.onnx", task="splade")
    assert rep.metadata.source_model == "tiny/bert-mlm" and rep.metadata.source_revision == rev
    # run finds the tokenizer through the name recorded in the metadata
    _, results = hf.predict(tmp_path / "c.onnx", TEXTS, top_k=5)
    assert all(r.terms for r in results)


def test_short_position_table_caps_validation_shapes(tmp_path):
    """Sequences beyond max_position_embeddings do not exist: validation stays inside."""
    d = tmp_path / "short"
    d.mkdir()
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                            *TEXTS[1].split()]) + "\n")
    tok = transformers.BertTokenizerFast.from_pretrained(d)
    tok.save_pretrained(d)
    torch.manual_seed(1)
    transformers.BertModel(transformers.BertConfig(
        vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=12)).save_pretrained(d)
    for exporter in ("torchscript", "dynamo"):
        rep = hf.export(d, tmp_path / f"{exporter}.onnx", exporter=exporter)
        assert rep.metadata.max_sequence == 12 and rep.validation.ok
        assert max(diff.shape[1] for diff in rep.validation.diffs
                   if diff.name == "last_hidden_state") == 12


def test_cls_pooling_when_the_sentence_transformers_config_says_so(tiny_models, tmp_path):
    import json
    import shutil
    d = tmp_path / "cls-model"
    shutil.copytree(tiny_models("bert"), d)
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": True,
         "pooling_mode_mean_tokens": False}))
    hf.export(d, tmp_path / "m.onnx")
    tok = transformers.AutoTokenizer.from_pretrained(d)
    model = transformers.AutoModel.from_pretrained(d).eval()
    with torch.no_grad():
        first = model(**tok(TEXTS, padding=True, return_tensors="pt")).last_hidden_state[:, 0]
    want = torch.nn.functional.normalize(first, dim=-1).numpy()
    _, results = hf.predict(tmp_path / "m.onnx", TEXTS)
    np.testing.assert_allclose(np.stack([r.embedding for r in results]), want, atol=1e-5)


def test_auto_falls_back_to_dynamo_when_tracing_fails(tiny_models, tmp_path, capfd):
    """TorchScript cannot export BERT's dynamic position slice at opset 6; auto moves on to
    dynamo, which exports at the lowest opset it has (18), and says so."""
    rep = hf.export(tiny_models("bert-mlm"), tmp_path / "f.onnx", opset=6)
    assert rep.exporter == "dynamo" and rep.validation.ok
    assert any("torchscript exporter failed" in a for a in rep.attempts)
    model = onnx.load(str(tmp_path / "f.onnx"))
    assert rep.opset == next(o.version for o in model.opset_import if o.domain == "") >= 18
    assert "Torch IR graph" not in capfd.readouterr().err  # the exporter's dump is swallowed

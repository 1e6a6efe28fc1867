"""``hf optimize --int8``: the feed-forward MatMuls quantized, judged by pooled cosine (and, for
SPLADE, unchanged top terms). The criterion is checked on arrays built by hand; the real
all-MiniLM-L6-v2 is compared with sentence-transformers on real sentences."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hugectr2onnx import hf
from hugectr2onnx.cli import main
from hugectr2onnx.errors import AccuracyError, UsageError
from hugectr2onnx.hf.checks import cosine_diff

SENTENCES = ["A man is eating food.", "What is the capital of France?",
             "Paris is the capital and most populous city of France.",
             "How do I reset my password?",
             "Click-through rate prediction models rank ads by the probability of a click.",
             "The embedding table maps each categorical feature value to a dense vector.",
             "Mix the flour, sugar and butter, then bake for twenty minutes at 180 degrees.",
             "The stock market fell sharply after the central bank raised interest rates."]


def test_cosine_criterion_pools_unpadded_tokens_and_checks_top_terms():
    mask = np.array([[1, 1, 0]])
    ref = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # pooled over 2 tokens: (1, 0)
    cand = np.array([[[1.0, 1.0], [1.0, -1.0], [0.0, 50.0]]])  # pooled (1, 0); padding ignored
    d = cosine_diff("h", ref, cand, mask, 0.99)
    assert d.cosine == pytest.approx(1.0) and d.ok and d.max_abs_diff == 49.0
    tilted = np.array([[[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]])  # pooled (1, 1): cosine 0.7071
    d = cosine_diff("h", ref, tilted, mask, 0.99)
    assert d.cosine == pytest.approx(2 ** -0.5) and not d.ok and "EXCEEDED" in d.describe()

    weights = np.array([[5.0, 4.0, 3.0, 0.1]])  # [batch, vocab]: SPLADE's sparse vector
    swapped = np.array([[5.0, 2.9, 3.0, 3.05]])  # top-2 {0, 1} -> {0, 3}: cosine still 0.96
    d = cosine_diff("s", weights, swapped, np.ones((1, 2)), 0.5, top_k=2)
    assert d.top_kept == 0.5 and not d.ok and "top-2 terms kept 50%" in d.describe()
    assert cosine_diff("s", weights, weights * 1.01, np.ones((1, 2)), 0.99, top_k=2).ok


def test_int8_minilm_keeps_sentence_embeddings(minilm_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    hf.export(minilm_dir, tmp_path / "m.onnx")
    rep = hf.optimize(tmp_path / "m.onnx", tmp_path / "q.onnx", int8=True)
    assert rep.int8 == 12 and rep.validation.ok  # 6 layers x (intermediate, output)
    assert all(d.cosine >= hf.INT8_MIN_COSINE for d in rep.validation.diffs)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 12 and ops.count("Attention") == 6  # attention fp32
    want = SentenceTransformer(str(minilm_dir), device="cpu").encode(
        SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    _, results = hf.predict(tmp_path / "q.onnx", SENTENCES, model=str(minilm_dir))
    got = np.stack([r.embedding for r in results])
    assert np.min(np.sum(got * want, axis=1)) >= 0.99
    # nearest other sentence of each sentence unchanged
    sim, sim_q = want @ want.T - 2 * np.eye(len(want)), got @ got.T - 2 * np.eye(len(got))
    assert (sim.argmax(1) == sim_q.argmax(1)).all()


def test_int8_cli_and_refusals(tiny_models, tmp_path, capsys):
    m, o = str(tmp_path / "m.onnx"), str(tmp_path / "o.onnx")
    hf.export(tiny_models("bert"), m)
    assert main(["hf", "optimize", m, "-o", o, "--int8", "--stats"]) == 0
    out = capsys.readouterr().out
    assert "int8:" in out and "min cosine" in out and "nodes" in out
    with pytest.raises(UsageError, match="fp16 or int8"):
        hf.optimize(m, tmp_path / "x.onnx", fp16=True, int8=True)
    with pytest.raises(AccuracyError, match="nothing written"):  # a cosine no model reaches
        hf.optimize(m, tmp_path / "x.onnx", int8=True, min_cosine=1.0 + 1e-9)
    assert not (tmp_path / "x.onnx").exists()

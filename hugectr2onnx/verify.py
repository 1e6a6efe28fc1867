"""Verification: run a converted ONNX model next to the independent numpy reference.

The embedding mode comes from the model's own inputs (key inputs: it looks up its tables;
embedding-vector inputs: it does not). On a mismatch the model is run again with every
HugeCTR tensor exposed, and the first layer whose output differs is named (runners.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputFileError
from .ir import Graph
from .runners import (Divergence, OrtRunner, ReferenceRunner, TensorDiff, compare_tensors,
                      first_divergence, producer_label, tensor_names)


@dataclass
class VerificationReport:
    batch: int
    outputs: list[TensorDiff] = field(default_factory=list)
    atol: float = 1e-5
    rtol: float = 0.0
    embedding_mode: str = "none"  # "keys" (tables in the model), "vectors" or "none"
    divergence: Divergence | None = None
    warnings: list[str] = field(default_factory=list)
    source: str = "random inputs"

    @property
    def ok(self) -> bool:
        return bool(self.outputs) and all(o.ok for o in self.outputs)

    def summary(self) -> str:
        lines = [f"warning: {w}" for w in dict.fromkeys(self.warnings)]
        lines.append(f"verified batch {self.batch} of {self.source} against the numpy reference "
                     f"(embeddings: {_MODES[self.embedding_mode]}; "
                     f"atol {self.atol:g}, rtol {self.rtol:g}):")
        for o in self.outputs:
            mark = "ok" if o.ok else "MISMATCH"
            lines.append(f"  {o.name} {list(o.shape)}: max |diff| {o.max_abs:.3g}, "
                         f"max rel {o.max_rel:.3g}  {mark}")
        if self.divergence is not None:
            lines += divergence_lines(self.divergence, self.atol, self.rtol)
        elif not self.ok:
            lines.append("no single layer pinned: every tensor both sides have agrees "
                         "(the difference is in a fused or unexposed step)")
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        if self.ok:
            return f"PASS: {len(self.outputs)} output(s) within atol {self.atol:g}, rtol {self.rtol:g}"
        if self.divergence is not None:
            return f"FAIL: first divergence at {self.divergence.where}"
        return "FAIL: outputs differ"

    def to_dict(self) -> dict:
        return {"ok": self.ok, "verdict": "PASS" if self.ok else "FAIL", "batch": self.batch,
                "source": self.source, "atol": self.atol, "rtol": self.rtol,
                "embedding_mode": self.embedding_mode,
                "outputs": [o.to_dict() for o in self.outputs],
                "divergence": None if self.divergence is None else self.divergence.to_dict(),
                "warnings": list(dict.fromkeys(self.warnings))}


_MODES = {"keys": "looked up in the model", "vectors": "fed as vectors", "none": "none"}


def divergence_lines(div: Divergence, atol: float, rtol: float) -> list[str]:
    d = div.diff
    lines = [f"first divergence: {div.label}, type {div.layer_type}, tensor {d.name}"]
    if d.shape != d.expected_shape:
        lines.append(f"  shape {list(d.shape)}, expected {list(d.expected_shape)}")
        return lines
    lines.append(f"  max |diff| {d.max_abs:.3g}, max rel {d.max_rel:.3g}; {d.mismatched} of "
                 f"{d.total} values outside atol {atol:g} + rtol {rtol:g} x |expected|"
                 + (f"; {d.nan_mismatch} NaN on one side only" if d.nan_mismatch else ""))
    lines.append("  |diff| histogram:")
    width = max(n for _, n in d.histogram) or 1
    for label, n in d.histogram:
        if n:
            lines.append(f"    {label:>8} {n:>9}  {'#' * max(1, round(30 * n / width))}")
    if div.fused_with:
        lines.append(f"  its input(s) {', '.join(div.hidden_inputs)} have no tensor in the model "
                     f"(fused): the cause may be in {', '.join(map(producer_label, div.fused_with))}")
    return lines


def declared_inputs(onnx_path) -> str | None:
    """What the model's hugectr2onnx metadata says its inputs are ('keys' or
    'embedding_vectors'), None when it carries none."""
    from .onnx_backend.metadata import read_metadata

    data = read_metadata(onnx_path).get("data")
    return data.get("inputs") if isinstance(data, dict) else None


def embedding_mode(graph: Graph, input_names, *, file: str = "", declared: str | None = None
                   ) -> str:
    """'keys', 'vectors' or 'none', from the ONNX model's input names; ``declared`` (the
    metadata's 'keys'/'embedding_vectors') must agree with them."""
    mode = _mode_from_inputs(graph, input_names, file)
    expected = {"keys": "keys", "embedding_vectors": "vectors"}.get(declared or "")
    if expected and mode != "none" and mode != expected:
        raise InputFileError(f"the model's metadata says its inputs are {declared}, but its "
                             f"inputs are {list(input_names)}", file=file)
    return mode


def _mode_from_inputs(graph: Graph, input_names, file: str) -> str:
    inputs = list(input_names)
    keys = [e.bottom for e in graph.embeddings if e.bottom in inputs]
    vectors = [e.top for e in graph.embeddings if e.top in inputs]
    known = {graph.data.dense_name, *(e.bottom for e in graph.embeddings),
             *(e.top for e in graph.embeddings)}
    foreign = [n for n in inputs if n not in known]
    if foreign:
        raise InputFileError(f"the model's input {foreign[0]!r} is neither the graph's dense "
                             f"input, a key input nor an embedding output (inputs: {inputs}; "
                             "converted from another model?)", file=file)
    if not graph.embeddings:
        return "none"
    if keys and vectors:
        raise InputFileError(f"the model takes both keys ({keys[0]!r}) and embedding vectors "
                             f"({vectors[0]!r}); hugectr2onnx never writes such a model",
                             file=file)
    if keys:
        return "keys"
    if vectors:
        return "vectors"
    return "none"


def random_feeds(graph: Graph, batch: int, *, convert_embedding: bool, seed: int = 0,
                 padding_key: int | None = -1, unseen_fraction: float = 0.1) -> dict:
    """Dense features, and keys drawn from the trained tables plus unseen keys and padding."""
    rng = np.random.default_rng(seed)
    data = graph.data
    feeds = {data.dense_name: rng.standard_normal((batch, data.dense_dim)).astype(np.float32)}
    for emb in graph.embeddings:
        if not convert_embedding:
            feeds[emb.top] = rng.uniform(-1, 1, (batch, emb.slot_num, emb.out_width)).astype(np.float32)
            continue
        sp = data.sparse_input(emb.bottom)
        if emb.bottom in feeds:
            continue
        known = np.asarray(emb.table.keys)
        shape = (batch, sp.slot_num, sp.max_nnz)
        keys = (known[rng.integers(0, known.size, shape)] if known.size  # an empty dynamic
                else rng.integers(-(2 ** 62), 2 ** 62, shape))  # table knows no keys
        unseen = rng.random(keys.shape) < unseen_fraction
        keys = np.where(unseen, rng.integers(-(2 ** 62), 2 ** 62, keys.shape), keys)
        if padding_key is not None:
            nnz = np.asarray(sp.nnz_per_slot)[None, :, None]
            count = rng.integers(0, nnz + 1, (batch, sp.slot_num, 1)) if not sp.is_fixed_length \
                else np.broadcast_to(nnz, (batch, sp.slot_num, 1))
            keys = np.where(np.arange(sp.max_nnz)[None, None, :] < count, keys, padding_key)
        feeds[emb.bottom] = keys.astype(np.int64)
    return feeds


def compare(graph: Graph, onnx_path, feeds: dict, *, padding_key: int | None = -1,
            num_gpus: int | None = None, atol: float = 1e-5, rtol: float = 0.0,
            threads: int = 0, locate: bool = True, source: str = "random inputs",
            warnings: list[str] | None = None) -> VerificationReport:
    """Run the model and the reference on ``feeds``; with ``locate``, a mismatch is traced
    to the first diverging HugeCTR layer (a second run exposing every tensor)."""
    plain = OrtRunner(onnx_path, threads=threads)
    mode = embedding_mode(graph, plain.input_names, file=str(onnx_path))
    absent = [n for n in plain.input_names if n not in feeds]
    if absent:
        raise InputFileError(f"no values for the model's input {absent[0]!r}", file=str(onnx_path))
    got = plain.run(feeds)
    reference = ReferenceRunner(graph, padding_key=padding_key, num_gpus=num_gpus)
    expected = reference.run(feeds)
    batch = next(iter(feeds.values())).shape[0]
    report = VerificationReport(batch=batch, atol=atol, rtol=rtol, embedding_mode=mode,
                                source=source, warnings=list(warnings or []))
    missing = [o.name for o in graph.outputs if o.name not in plain.model_outputs]
    if missing:
        raise InputFileError(f"the model has no output {missing[0]!r} "
                             f"(outputs: {plain.model_outputs})", file=str(onnx_path))
    for o in graph.outputs:
        report.outputs.append(compare_tensors(o.name, got[o.name], expected[o.name],
                                              atol=atol, rtol=rtol))
    if not report.ok and locate:
        exposed = OrtRunner(onnx_path, expose=tensor_names(graph), threads=threads).run(feeds)
        report.divergence = first_divergence(graph, expected, exposed, atol=atol, rtol=rtol)
    return report

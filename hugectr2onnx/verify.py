"""Verification: run a converted ONNX model next to the independent numpy reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ir import Graph
from .reference import run_reference


@dataclass
class OutputComparison:
    name: str
    max_abs: float
    max_rel: float
    shape: tuple

    def ok(self, atol: float) -> bool:
        return self.max_abs <= atol


@dataclass
class VerificationReport:
    batch: int
    outputs: list[OutputComparison] = field(default_factory=list)
    atol: float = 1e-5

    @property
    def ok(self) -> bool:
        return all(o.ok(self.atol) for o in self.outputs)

    def summary(self) -> str:
        lines = [f"verified batch {self.batch} against the numpy reference (atol {self.atol:g}):"]
        for o in self.outputs:
            mark = "ok" if o.ok(self.atol) else "MISMATCH"
            lines.append(f"  {o.name} {list(o.shape)}: max |diff| {o.max_abs:.3g}, "
                         f"max rel {o.max_rel:.3g}  {mark}")
        return "\n".join(lines)


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
            num_gpus: int | None = None, atol: float = 1e-5, threads: int = 0) -> VerificationReport:
    import onnxruntime as ort

    from .errors import InputFileError
    from .hugectr.files import existing_file

    existing_file(onnx_path, "ONNX model")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for unreadable models
        raise InputFileError(f"ONNX Runtime cannot load the model: {str(e).splitlines()[0]:.200}",
                             file=str(onnx_path))
    wanted = {i.name for i in sess.get_inputs()}
    absent = sorted(wanted - set(feeds))
    if absent:
        raise InputFileError(f"the model's input {absent[0]!r} is not in the HugeCTR graph "
                             f"(converted from another model?)", file=str(onnx_path))
    got = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {k: v for k, v in feeds.items() if k in wanted})))
    expected = run_reference(graph, feeds, padding_key=padding_key, num_gpus=num_gpus)
    batch = next(iter(feeds.values())).shape[0]
    report = VerificationReport(batch=batch, atol=atol)
    missing = [n for n in expected if n not in got]
    if missing:
        raise InputFileError(f"the model has no output {missing[0]!r} (outputs: {sorted(got)})",
                             file=str(onnx_path))
    for name, want in expected.items():
        have = got[name]
        if have.shape != want.shape:
            report.outputs.append(OutputComparison(name, float("inf"), float("inf"), have.shape))
            continue
        diff = np.abs(have.astype(np.float64) - want)
        rel = diff / np.maximum(np.abs(want), 1e-6)
        report.outputs.append(OutputComparison(name, float(diff.max(initial=0)),
                                               float(rel.max(initial=0)), have.shape))
    return report

"""Runners: each runs one form of a model and returns its tensors by HugeCTR name.

A runner is anything with ``name`` and ``run(feeds) -> {tensor name: ndarray}``. The numpy
reference and ONNX Runtime are here; PyTorch or Keras runners only need the same method and
to name their intermediate tensors after HugeCTR's tops. ``first_divergence`` then walks
the HugeCTR graph in order and names the first layer whose outputs differ, whatever pair of
runners produced them.

>>> ref = ReferenceRunner(graph)                    # every tensor of the reference
>>> ort_ = OrtRunner("model.onnx", expose=tensor_names(graph))
>>> feeds = ...
>>> div = first_divergence(graph, ref.run(feeds), ort_.run(feeds), atol=1e-5, rtol=1e-5)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol

import numpy as np

from .ir import Embedding, Graph, Layer
from .layers.base import Registry, default_registry

# upper edges of the |difference| histogram, in decades; the last bin is everything above
HISTOGRAM_EDGES = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class Runner(Protocol):
    name: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every tensor this runner can name (inputs, intermediates, predictions)."""


# --- runners -----------------------------------------------------------------------------


class ReferenceRunner:
    """The independent numpy reference (``reference.run_reference`` with ``keep_all``)."""

    name = "reference"

    def __init__(self, graph: Graph, *, padding_key: int | None = -1,
                 num_gpus: int | None = None, registry: Registry | None = None):
        self.graph, self.padding_key, self.num_gpus = graph, padding_key, num_gpus
        self.registry = registry

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .reference import run_reference

        return run_reference(self.graph, feeds, padding_key=self.padding_key,
                             num_gpus=self.num_gpus, registry=self.registry, keep_all=True)


class OrtRunner:
    """ONNX Runtime on a model whose chosen intermediate values are made graph outputs.

    ``model`` is a path or a ModelProto. ``expose`` names the values to return besides the
    model's outputs: an iterable of names (absent ones are skipped: a fused or folded layer
    leaves no tensor behind), ``"all"`` for every node output, or None for outputs only.
    The model on disk is never changed: an in-memory copy gets the extra outputs; its
    external data (``<model>.data``) is read in place, so large tables are not copied.
    """

    name = "onnxruntime"

    def __init__(self, model, *, expose: Iterable[str] | str | None = None, threads: int = 0,
                 providers: list[str] | None = None):
        import onnx
        import onnxruntime as ort

        self.path = None if isinstance(model, onnx.ModelProto) else Path(os.fspath(model))
        proto = model if self.path is None else _load_skeleton(self.path)
        self.model_outputs = [o.name for o in proto.graph.output]
        self.exposed = self._extra_outputs(proto, expose)
        if self.exposed:
            copy = onnx.ModelProto()
            copy.CopyFrom(proto)
            copy.graph.output.extend(onnx.ValueInfoProto(name=n) for n in self.exposed)
            proto = copy
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        if self.path is not None:  # external data stays where the model file points
            opts.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                          str(self.path.parent.resolve()))
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), opts,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for unreadable models
            from .errors import InputFileError

            raise InputFileError(f"ONNX Runtime cannot load the model: "
                                 f"{str(e).splitlines()[0]:.200}",
                                 file=str(self.path or "<model>")) from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    @staticmethod
    def _extra_outputs(proto, expose) -> list[str]:
        if expose is None:
            return []
        produced = [o for n in proto.graph.node for o in n.output if o]
        if isinstance(expose, str):
            if expose != "all":
                raise ValueError(f"expose must be names, 'all' or None, found {expose!r}")
            wanted = produced
        else:
            have = set(produced)
            wanted = [n for n in expose if n in have]
        outputs = set(o.name for o in proto.graph.output)
        return list(dict.fromkeys(n for n in wanted if n not in outputs))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise KeyError(f"no feed for the model's input {missing[0]!r}")
        names = self.model_outputs + self.exposed
        got = self.session.run(names, {n: feeds[n] for n in self.input_names})
        values = {n: np.asarray(feeds[n]) for n in self.input_names}
        values.update(zip(names, got))
        return values


INLINE_EXTERNAL_BYTES = 1 << 20  # smaller external tensors are read: shape inference needs them


def _load_skeleton(path: Path):
    """The model without its big external tensors (tables can be many GB); small ones are
    read in, since ONNX Runtime's shape inference cannot see external constants."""
    import onnx
    from onnx.external_data_helper import (load_external_data_for_tensor,
                                           uses_external_data)

    from .errors import InputFileError
    from .hugectr.files import existing_file

    existing_file(path, "ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise InputFileError(f"not an ONNX model: {str(e).splitlines()[0]:.200}",
                             file=str(path)) from None
    for t in model.graph.initializer:
        if uses_external_data(t):
            length = next((int(e.value) for e in t.external_data if e.key == "length"), None)
            if length is not None and length <= INLINE_EXTERNAL_BYTES:
                load_external_data_for_tensor(t, str(path.parent))
                del t.external_data[:]
                t.data_location = onnx.TensorProto.DEFAULT
    return model


# --- graph order ------------------------------------------------------------------------


def producers(graph: Graph, registry: Registry | None = None):
    """(producer, tensor names) in graph order: embeddings, then layers; a loss layer's
    tensor is its prediction, named after its label as in the ONNX model."""
    registry = registry or default_registry()
    for emb in graph.embeddings:
        yield emb, [emb.top]
    for layer in graph.layers:
        h = registry.get(layer.type)
        if h is not None and h.is_loss:
            yield layer, [layer.bottoms[1]]
        else:
            yield layer, list(layer.tops)


def tensor_names(graph: Graph, registry: Registry | None = None) -> list[str]:
    """Every HugeCTR tensor a backend may expose, in graph order."""
    return [n for _, names in producers(graph, registry) for n in names]


def producer_type(p: Embedding | Layer) -> str:
    return p.type


def producer_label(p: Embedding | Layer) -> str:
    if isinstance(p, Embedding):
        return f"embedding #{p.index} {p.type} (top {p.top})"
    return p.label


# --- comparison -------------------------------------------------------------------------


@dataclass
class TensorDiff:
    """How ``actual`` differs from ``expected`` under ``allclose(actual, expected, rtol, atol)``
    with NaN equal to NaN (and an infinity equal to itself)."""

    name: str
    shape: tuple
    expected_shape: tuple
    max_abs: float
    max_rel: float
    mismatched: int
    total: int
    histogram: list[tuple[str, int]] = field(default_factory=list)
    nan_mismatch: int = 0  # NaN on one side only

    @property
    def ok(self) -> bool:
        return self.shape == self.expected_shape and self.mismatched == 0

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape),
                "expected_shape": list(self.expected_shape), "max_abs": _num(self.max_abs),
                "max_rel": _num(self.max_rel), "mismatched": self.mismatched,
                "total": self.total, "nan_mismatch": self.nan_mismatch,
                "histogram": [[label, n] for label, n in self.histogram], "ok": self.ok}


def _num(x: float):
    return x if np.isfinite(x) else str(x)


def compare_tensors(name: str, actual, expected, *, atol: float = 1e-5,
                    rtol: float = 0.0) -> TensorDiff:
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        return TensorDiff(name, a.shape, e.shape, float("inf"), float("inf"),
                          max(a.size, e.size), max(a.size, e.size))
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    close = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    both_nan = np.isnan(a64) & np.isnan(e64)
    same = both_nan | (a64 == e64)  # equal infinities too
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a64 - e64))
        diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only
        rel = np.where(same, 0.0, diff / np.maximum(np.abs(e64), np.finfo(np.float32).tiny))
    one_nan = int((np.isnan(a64) ^ np.isnan(e64)).sum())
    return TensorDiff(name, a.shape, e.shape, float(diff.max(initial=0.0)),
                      float(rel.max(initial=0.0)), int((~close).sum()), int(a.size),
                      histogram(diff), one_nan)


def histogram(diff: np.ndarray) -> list[tuple[str, int]]:
    """Counts of |difference| per decade: '0', '<=1e-08', ..., '<=1', '>1'."""
    flat = diff.reshape(-1)
    edges = np.asarray(HISTOGRAM_EDGES)
    counts = np.bincount(np.searchsorted(edges, flat, side="left"), minlength=edges.size + 1)
    labels = ["0"] + [f"<={e:g}" for e in edges[1:]] + [f">{edges[-1]:g}"]
    return list(zip(labels, (int(c) for c in counts)))


@dataclass
class Divergence:
    """The first producer (embedding or layer) in graph order whose output differs."""

    producer: Embedding | Layer
    diff: TensorDiff
    compared: int  # tensors compared up to and including this one
    hidden_inputs: list[str] = field(default_factory=list)  # inputs with no tensor to compare

    @property
    def layer_type(self) -> str:
        return producer_type(self.producer)

    @property
    def label(self) -> str:
        return producer_label(self.producer)

    def to_dict(self) -> dict:
        index = self.producer.index
        kind = "embedding" if isinstance(self.producer, Embedding) else "layer"
        return {"kind": kind, "index": index, "type": self.layer_type, "label": self.label,
                "tensor": self.diff.name, "diff": self.diff.to_dict(),
                "hidden_inputs": self.hidden_inputs}


def compare_all(graph: Graph, expected: dict, actual: dict, *, atol: float = 1e-5,
                rtol: float = 0.0, registry: Registry | None = None):
    """(producer, TensorDiff) for every HugeCTR tensor both sides have, in graph order."""
    for producer, names in producers(graph, registry):
        for name in names:
            if name in expected and name in actual:
                yield producer, compare_tensors(name, actual[name], expected[name],
                                                atol=atol, rtol=rtol)


def first_divergence(graph: Graph, expected: dict, actual: dict, *, atol: float = 1e-5,
                     rtol: float = 0.0, registry: Registry | None = None) -> Divergence | None:
    """The first HugeCTR layer whose output in ``actual`` differs from ``expected``.

    Tensors missing on either side (fused away, or not exposed) are skipped, so a divergence
    is pinned to the first layer that still has a tensor on both sides; its
    ``hidden_inputs`` name the inputs that had none (a fused producer may be the cause)."""
    count = 0
    for producer, diff in compare_all(graph, expected, actual, atol=atol, rtol=rtol,
                                      registry=registry):
        count += 1
        if not diff.ok:
            bottoms = producer.bottoms if isinstance(producer, Layer) else []
            hidden = [b for b in bottoms if b in graph.shapes and b not in actual
                      and graph.producer_of(b) is not None]
            return Divergence(producer, diff, count, hidden)
    return None

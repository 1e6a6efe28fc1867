"""``HugeCTRModule``: a HugeCTR graph as a trainable ``torch.nn.Module``.

Each dense layer runs its handler's ``forward`` (layers/*.py) with the torch ops; its
tensors are parameters (dense file) and buffers (ntp JSON) named after the layer's first top
and the handler's WeightSpec, in HugeCTR's layout: ``layers.fc1.W`` is ``[in, out]`` as in the
dense file. Each sparse embedding is a ``HugeCTREmbedding`` under ``embeddings.<top>``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..hugectr.collection_description import COLLECTION_TYPE
from ..ir import Graph, Layer
from ..layers.base import Registry, default_registry
from .embedding import HugeCTREmbedding
from .ops import OPS


_TAKEN = set(dir(nn.ModuleDict()))


def module_key(tensor: str) -> str:
    """A layer's name in the module tree: its first top ('.' is taken by torch's paths, and
    ModuleDict's own attributes such as 'keys' cannot be names)."""
    key = tensor.replace(".", "_") or "_"
    return f"{key}_" if key in _TAKEN else key


def table_key(emb) -> str:
    """The module of an embedding's table: lookups of an embedding collection that share a
    table share one module, ``ebc_<table name>``."""
    if emb.type == COLLECTION_TYPE:
        return module_key(f"ebc_{emb.table_name}")
    return module_key(emb.top)


def _unique(modules: nn.ModuleDict, key: str, index: int) -> str:
    return key if key not in modules else f"{key}_{index}"


class LayerTensors(nn.Module):
    """One layer's dense-file tensors (parameters) and ntp tensors (buffers), by spec name."""

    def __init__(self, trainable: Mapping[str, np.ndarray], stats: Mapping[str, np.ndarray]):
        super().__init__()
        self.names = list(trainable) + list(stats)
        for name, a in trainable.items():
            self.register_parameter(name, nn.Parameter(torch.tensor(np.asarray(a, np.float32))))
        for name, a in stats.items():
            self.register_buffer(name, torch.tensor(np.asarray(a, np.float32)))

    def tensors(self) -> dict:
        return {n: getattr(self, n) for n in self.names}


class HugeCTRModule(nn.Module):
    """``forward(**inputs) -> {label: prediction}`` with the ONNX model's input names: the
    dense input ``[B, dense_dim]`` float32, per sparse input int64 keys ``[B, slots, max_nnz]``
    padded with ``padding_key`` (or, without tables, each embedding's vectors
    ``[B, slots, vec]`` under the embedding's top name). ``loss(inputs, labels)`` is HugeCTR's
    training loss. ``train()`` gives HugeCTR's training behaviour, ``eval()`` inference."""

    def __init__(self, graph: Graph, *, graph_json: str | None = None,
                 padding_key: int | None = -1, table_gpus: list[int] | None = None,
                 capacities: list[int] | None = None, sparse: bool = False,
                 with_tables: bool | None = None, progress: bool | None = None,
                 registry: Registry | None = None, collection: dict | None = None):
        super().__init__()
        registry = registry or default_registry()
        self.graph, self.graph_json, self.padding_key = graph, graph_json, padding_key
        self._handlers = [registry.get(layer.type) for layer in graph.layers]
        self.layers = nn.ModuleDict()
        self._keys: list[str | None] = []
        for layer, h in zip(graph.layers, self._handlers):
            specs, stats = h.weight_specs(layer), h.ntp_specs(layer)
            if not specs and not stats:
                self._keys.append(None)
                continue
            key = _unique(self.layers, module_key(layer.tops[0]), layer.index)
            self.layers[key] = LayerTensors(
                {s.name: _weight(layer, s) for s in specs}, {s.name: _weight(layer, s) for s in stats})
            self._keys.append(key)
        if with_tables is None:
            with_tables = any(e.table is not None for e in graph.embeddings)
        self.collection = collection  # the embedding collection's description document
        self.embeddings = nn.ModuleDict()
        self.embedding_keys: list[str] = []  # per graph embedding, its table's module
        for k, emb in enumerate(graph.embeddings if with_tables else []):
            key = table_key(emb)
            self.embedding_keys.append(key)
            if key in self.embeddings:  # a collection table serving another lookup
                continue
            t = emb.table
            self.embeddings[key] = HugeCTREmbedding(
                emb.vec_size, emb.slot_num, combiner=emb.combiner,
                keys=None if t is None else t.keys, vectors=None if t is None else t.vectors,
                slot_ids=None if t is None else t.slot_ids, localized=emb.localized,
                capacity=(capacities or [0] * len(graph.embeddings))[k],
                num_gpus=(table_gpus or [1] * len(graph.embeddings))[k],
                padding_key=padding_key, sparse=sparse, progress=progress, name=emb.top)
        for layer in graph.layers:  # the module owns the tensors now
            layer.weights = {}
        for emb in graph.embeddings:
            emb.table = None

    # ---------------------------------------------------------------- names
    @property
    def label_names(self) -> list[str]:
        return list(self.graph.data.label_names)

    @property
    def input_names(self) -> list[str]:
        data = self.graph.data
        names = [data.dense_name] if data.dense_dim else []
        for emb in self.graph.embeddings:
            name = emb.bottom if self.embeddings else emb.top
            if name not in names:
                names.append(name)
        return names

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.graph.outputs]

    # ---------------------------------------------------------------- running the graph
    def forward(self, **inputs) -> dict:
        """Predictions by label name, as the ONNX model's outputs."""
        return self._run(inputs, None)[0]

    def losses(self, inputs: Mapping, labels) -> dict:
        """HugeCTR's training loss of each loss layer, by label name."""
        return self._run(inputs, self._labels(labels))[1]

    def loss(self, inputs: Mapping, labels, weights: Mapping[str, float] | None = None):
        """The training loss: the loss layers' losses summed, each times its label weight
        (HugeCTR's ``loss_weights``, 1 by default). ``labels``: a tensor for a one-label
        graph, else a dict by label name of ``[B, label_dim]`` tensors."""
        parts = self.losses(inputs, labels)
        weights = weights or {}
        unknown = sorted(set(weights) - set(parts))
        if unknown:
            raise UsageError(f"loss weights for unknown outputs {unknown}; outputs are "
                             f"{sorted(parts)}")
        total = None
        for name, value in parts.items():
            value = value * float(weights.get(name, 1.0))
            total = value if total is None else total + value
        return total

    def _labels(self, labels) -> dict:
        names = self.label_names
        if not isinstance(labels, Mapping):
            if len(names) != 1:
                raise UsageError(f"the graph has labels {names}: pass a dict by label name")
            labels = {names[0]: labels}
        missing = [n for n in names if n not in labels]
        if missing:
            raise UsageError(f"missing label(s) {missing}; the graph's labels are {names}")
        dtype = self._dtype()
        return {n: torch.as_tensor(labels[n]).to(dtype).reshape(-1, dim)
                for n, dim in zip(names, self.graph.data.label_dims)}

    def _dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.float32

    def _input(self, inputs: Mapping, name: str, dtype):
        if name not in inputs:
            raise UsageError(f"missing input '{name}'; the model's inputs are {self.input_names}")
        return torch.as_tensor(inputs[name]).to(dtype)

    def _run(self, inputs: Mapping, labels: dict | None):
        graph, dtype = self.graph, self._dtype()
        values: dict = {}
        if graph.data.dense_dim:
            values[graph.data.dense_name] = self._input(inputs, graph.data.dense_name, dtype)
        keys_of = self.embedding_keys or [None] * len(graph.embeddings)
        for emb, key in zip(graph.embeddings, keys_of):
            if self.embeddings:
                keys = self._input(inputs, emb.bottom, torch.int64)
                values[emb.top] = self.embeddings[key](keys, emb.combiner).to(dtype)
            else:
                values[emb.top] = self._input(inputs, emb.top, dtype)
        if labels:
            values.update(labels)
        predictions, losses = {}, {}
        for layer, h, key in zip(graph.layers, self._handlers, self._keys):
            xs = [values.get(b) for b in layer.bottoms]
            params = self.layers[key].tensors() if key else {}
            ys = h.forward(layer, OPS, xs, params, training=self.training)
            if h.is_loss:
                predictions[layer.bottoms[1]] = ys[0]
                if labels is not None:
                    losses[layer.bottoms[1]] = self._loss(h, layer, xs[0], xs[1])
            for top, y in zip(layer.tops, ys):
                values[top] = y
        names = self.output_names
        return {n: predictions[n] for n in names}, {n: losses[n] for n in names if n in losses}

    def _loss(self, h, layer, logits, label):
        value = h.loss(layer, OPS, logits, label)
        if layer.params.get("regularizer"):
            weights = [p for lt in self.layers.values() for p in lt.parameters()]
            term = h.regularization(layer, OPS, weights, int(logits.shape[0]))
            value = value if term is None else value + term
        return value

    # ---------------------------------------------------------------- back to the IR
    def layer_weights(self, position: int) -> dict[str, np.ndarray]:
        """The current tensors of ``graph.layers[position]`` as float32 numpy arrays (dense
        file and ntp layout)."""
        key = self._keys[position]
        if key is None:
            return {}
        return {n: t.detach().cpu().numpy().astype(np.float32)
                for n, t in self.layers[key].tensors().items()}

    def tables(self) -> list[dict]:
        """Per embedding outside the embedding collection, the rows in use: keys, vectors,
        and slot ids for Localized."""
        return [self.embeddings[k].table() for e, k in zip(self.graph.embeddings,
                                                           self.embedding_keys)
                if e.type != COLLECTION_TYPE]

    def collection_tables(self) -> dict:
        """The embedding collection's tables by name: (keys, vectors) of the rows in use."""
        out = {}
        for e, k in zip(self.graph.embeddings, self.embedding_keys):
            if e.type == COLLECTION_TYPE and e.table_name not in out:
                t = self.embeddings[k].table()
                out[e.table_name] = (t["keys"], t["vectors"])
        return out


def describe(module: HugeCTRModule) -> str:
    """One line per part: dense parameters, statistics, tables."""
    dense = sum(p.numel() for p in module.layers.parameters())
    stats = sum(b.numel() for b in module.layers.buffers())
    lines = [f"{len(module.graph.layers)} layers, {dense} dense parameters"
             + (f", {stats} BatchNorm statistics" if stats else "")]
    for name, emb in module.embeddings.items():
        lines.append(f"  table {name}: {int(emb.num_keys)} keys x {emb.vec_size} "
                     f"(capacity {emb.capacity}, {emb.combiner})")
    return "\n".join(lines)


def _weight(layer: Layer, spec) -> np.ndarray:
    w = layer.weights.get(spec.name)
    if w is None:  # built from a checkpoint: load_state_dict fills it
        return np.zeros(spec.shape, np.float32)
    return np.asarray(w, dtype=np.float32).reshape(spec.shape)

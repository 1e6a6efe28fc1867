"""Writer of HugeCTR artifacts: graph JSON, dense file, ntp JSON and sparse tables.

``ModelBuilder`` mirrors HugeCTR's Python API (Input, SparseEmbedding, DenseLayer) and
reproduces what ``graph_to_json`` writes, including the automatic fan-out Slices and the
sorted multi-label order. It makes test fixtures today and is the road back to HugeCTR.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ir import Graph
from ..layers.base import Registry, default_registry
from .graph_json import parse_graph

MAX_FANOUT = 5


def _f32(x):
    """Floats as HugeCTR stores them: C++ float widened to double."""
    if isinstance(x, bool) or not isinstance(x, float):
        if isinstance(x, dict):
            return {k: _f32(v) for k, v in x.items()}
        if isinstance(x, list):
            return [_f32(v) for v in x]
        return x
    return float(np.float32(x))


@dataclass
class ModelBuilder:
    model_name: str = ""
    data: dict = field(default_factory=dict)
    embeddings: list = field(default_factory=list)
    dense_layers: list = field(default_factory=list)
    collection: object = None  # an embedding-collection Description: its output is no block

    def input(self, *, label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
              sparse=()) -> "ModelBuilder":
        """``sparse``: dicts with top, slot_num, nnz_per_slot (int or list), is_fixed_length."""
        names = [label_name] if isinstance(label_name, str) else list(label_name)
        dims = [label_dim] if isinstance(label_dim, int) else list(label_dim)
        order = sorted(range(len(names)), key=lambda i: names[i].encode())
        names, dims = [names[i] for i in order], [dims[i] for i in order]
        label = ({"top": names[0], "label_dim": dims[0]} if len(names) == 1
                 else {"top": names, "label_dim": dims})
        blocks = []
        for s in sparse:
            nnz = s.get("nnz_per_slot", 1)
            nnz = [nnz] * s["slot_num"] if isinstance(nnz, int) else list(nnz)
            blocks.append({"top": s["top"], "slot_num": s["slot_num"], "nnz_per_slot": nnz,
                           "is_fixed_length": bool(s.get("is_fixed_length", True)),
                           "type": s.get("type", "DistributedSlot")})
        self.data = {"type": "Data", "label": label,
                     "dense": {"top": dense_name, "dense_dim": dense_dim}, "sparse": blocks}
        return self

    def embedding(self, *, bottom, top, vec_size, combiner="sum",
                  type="DistributedSlotSparseEmbeddingHash", workspace_size_per_gpu_in_mb=8,
                  num_gpus=1, optimizer="Adam", update_type="Global",
                  slot_size_array=None) -> "ModelBuilder":
        states = {"Adam": 2, "Ftrl": 2, "AdaGrad": 1, "MomentumSGD": 1, "Nesterov": 1,
                  "SGD": 0}[optimizer] + (optimizer == "Adam" and update_type == "LazyGlobal")
        per_gpu = workspace_size_per_gpu_in_mb * 2 ** 20 // ((1 + states) * 4 * vec_size)
        hparam = {"workspace_size_per_gpu_in_mb": workspace_size_per_gpu_in_mb,
                  "max_vocabulary_size_global": per_gpu * num_gpus,
                  "embedding_vec_size": vec_size, "combiner": combiner}
        if slot_size_array:
            hparam["slot_size_array"] = list(slot_size_array)
        self.embeddings.append({"type": type, "bottom": bottom, "top": top,
                                "sparse_embedding_hparam": hparam,
                                "optimizer": {"type": optimizer, "update_type": update_type}})
        return self

    def dense(self, type, bottom, top, **params) -> "ModelBuilder":
        """A dense layer; ``params`` are its JSON keys (e.g. ``fc_param={"num_output": 8}``)."""
        self.dense_layers.append({"type": type, "bottom": bottom, "top": top, **params})
        return self

    # ------------------------------------------------------------------
    def graph_json(self, registry: Registry | None = None) -> dict:
        registry = registry or default_registry()
        plain = {"layers": [self.data, *self.embeddings, *self.dense_layers]}
        graph = parse_graph(json.loads(json.dumps(plain)), "<builder>", registry,
                            self.collection)
        layers = _insert_fanout_slices(self.dense_layers, graph)
        doc = {"layers": [_f32(b) for b in [self.data, *self.embeddings, *layers]]}
        if self.model_name:
            doc["model_name"] = self.model_name
        return doc

    def graph(self, registry: Registry | None = None) -> Graph:
        registry = registry or default_registry()
        return parse_graph(self.graph_json(registry), "<builder>", registry, self.collection)


def _insert_fanout_slices(dense_layers: list[dict], graph: Graph) -> list[dict]:
    """HugeCTR's graph_analysis: one Slice per tensor read by more than one dense layer."""
    consumers = defaultdict(list)
    for i, block in enumerate(dense_layers):
        bottoms = [block["bottom"]] if isinstance(block["bottom"], str) else block["bottom"]
        for k, name in enumerate(bottoms):
            consumers[name].append((i, k))
    renames, slices_before = {}, defaultdict(list)
    for name, uses in consumers.items():
        if len(uses) < 2:
            continue
        if len(uses) > MAX_FANOUT:
            raise ValueError(f"tensor {name} has {len(uses)} consumers; HugeCTR allows "
                             f"{MAX_FANOUT}")
        width = int(graph.shapes[name][-1])
        tops = [f"{name}_slice{j}" for j in range(len(uses))]
        slices_before[uses[0][0]].append({"type": "Slice", "bottom": name, "top": tops,
                                          "ranges": [[0, width]] * len(uses)})
        for j, use in enumerate(uses):
            renames[use] = tops[j]
    out = []
    for i, block in enumerate(dense_layers):
        out.extend(slices_before.get(i, []))
        block = dict(block)
        if isinstance(block["bottom"], str):
            block["bottom"] = renames.get((i, 0), block["bottom"])
        else:
            block["bottom"] = [renames.get((i, k), b) for k, b in enumerate(block["bottom"])]
        out.append(block)
    return out


# --------------------------------------------------------------------------- weights
def random_weights(graph: Graph, rng: np.random.Generator,
                   registry: Registry | None = None) -> None:
    """Fill every layer's trainable and non-trainable tensors with well-scaled values."""
    registry = registry or default_registry()
    for layer in graph.layers:
        h = registry.get(layer.type)
        for spec in h.weight_specs(layer):
            shape = spec.shape
            if spec.name == "gamma":
                w = 1.0 + 0.1 * rng.standard_normal(shape)
            elif len(shape) == 2 and shape[0] > 1 and shape[1] > 1:
                w = rng.uniform(-1, 1, shape) / np.sqrt(shape[0])
            else:
                w = 0.1 * rng.standard_normal(shape)
            layer.weights[spec.name] = w.astype(np.float32)
        for spec in h.ntp_specs(layer):
            lo, hi = (0.5, 1.5) if spec.name == "var" else (-0.2, 0.2)
            layer.weights[spec.name] = rng.uniform(lo, hi, spec.shape).astype(np.float32)


def write_dense(path, graph: Graph, registry: Registry | None = None) -> None:
    registry = registry or default_registry()
    with open(path, "wb") as f:
        for layer in sorted(graph.layers, key=lambda l: l.index):
            for spec in registry.get(layer.type).weight_specs(layer):
                arr = np.ascontiguousarray(layer.weights[spec.name], dtype="<f4")
                if arr.size != spec.size:
                    raise ValueError(f"{layer.label} weight {spec.name}: {arr.size} values, "
                                     f"layout needs {spec.size}")
                f.write(arr.tobytes())


def write_ntp(path, graph: Graph, registry: Registry | None = None, fp16: bool = False,
              exact: bool = False) -> bool:
    """BatchNorm statistics with C ``%f`` formatting as HugeCTR writes them (``exact``: every
    float32 digit, ``%.9g``, which any JSON reader takes); fp16 runs write 2·C values."""
    fmt = "%.9g" if exact else "%f"
    registry = registry or default_registry()
    entries = []
    for layer in sorted(graph.layers, key=lambda l: l.index):
        specs = registry.get(layer.type).ntp_specs(layer)
        if not specs:
            continue
        parts = [f'      "type": "{layer.type}"']
        for spec in specs:
            values = np.asarray(layer.weights[spec.name], dtype=np.float32).reshape(-1)
            if fp16:
                values = np.concatenate([values, np.full_like(values, 12345.0)])
            parts.append(f'      "{spec.name}": [' + ", ".join(fmt % v for v in values) + "]")
        entries.append("    {\n" + ",\n".join(parts) + "\n    }")
    if not entries:
        return False
    Path(path).write_text('{\n  "layers": [\n' + ",\n".join(entries) + "\n  ]\n}\n")
    return True


def write_sparse_folder(folder, keys, vectors, slot_ids=None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(keys, dtype="<i8").tofile(folder / "key")
    np.ascontiguousarray(vectors, dtype="<f4").tofile(folder / "emb_vector")
    if slot_ids is not None:
        np.ascontiguousarray(slot_ids, dtype="<u8").tofile(folder / "slot_id")


def write_legacy_sparse(path, keys, vectors, slot_ids=None, key_type: str = "I64") -> None:
    vectors = np.asarray(vectors, dtype="<f4")
    fields = [("key", "<u4" if key_type == "I32" else "<i8")]
    if slot_ids is not None:
        fields.append(("slot_id", "<u8"))
    fields.append(("vec", "<f4", (vectors.shape[1],)))
    rec = np.zeros(len(keys), dtype=fields)
    rec["key"] = keys
    if slot_ids is not None:
        rec["slot_id"] = slot_ids
    rec["vec"] = vectors
    rec.tofile(path)


@dataclass
class Artifacts:
    graph_config: str
    dense_model: str
    ntp_file: str | None
    sparse_models: list[str]
    embedding_collection: str | None = None  # description of a written embedding_dump


def save_model(builder: ModelBuilder, directory, *, prefix: str = "model", seed: int = 0,
               tables: list[dict] | None = None, graph: Graph | None = None,
               fp16_ntp: bool = False, legacy_sparse: bool = False, key_type: str = "I64",
               registry: Registry | None = None) -> Artifacts:
    """Write a full set of artifacts as a snapshot at iteration 0.

    ``graph``: weights to write (random ones from ``seed`` when None). ``tables``: per
    embedding ``{"keys": ..., "vectors": ..., "slot_ids": ...}`` (random when None).
    """
    registry = registry or default_registry()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    doc = builder.graph_json(registry)
    graph_path = directory / f"{prefix}.json"
    graph_path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    if graph is None:
        graph = parse_graph(doc, str(graph_path), registry, builder.collection)
        random_weights(graph, rng, registry)
    dense_path = directory / f"{prefix}_dense_0.model"
    write_dense(dense_path, graph, registry)
    ntp_path = directory / f"{prefix}_dense_0.model.ntp.json"
    has_ntp = write_ntp(ntp_path, graph, registry, fp16=fp16_ntp)
    sparse_paths = []
    legacy = [e for e in graph.embeddings if e.type != "EmbeddingCollection"]
    for i, emb in enumerate(legacy):  # a collection's tables go to write_embedding_dump
        t = (tables or [None] * len(legacy))[i] or random_table(emb, rng)
        p = directory / f"{prefix}{i}_sparse_0.model"
        if legacy_sparse:
            write_legacy_sparse(p, t["keys"], t["vectors"], t.get("slot_ids"), key_type)
        else:
            write_sparse_folder(p, t["keys"], t["vectors"], t.get("slot_ids"))
        sparse_paths.append(str(p))
    return Artifacts(str(graph_path), str(dense_path), str(ntp_path) if has_ntp else None,
                     sparse_paths)


def random_table(emb, rng: np.random.Generator, num_keys: int = 200, hashed: bool = False) -> dict:
    if hashed:
        keys = np.unique(rng.integers(-(2 ** 63), 2 ** 63 - 1, size=num_keys, dtype=np.int64))
    else:
        keys = rng.permutation(num_keys * 2)[:num_keys].astype(np.int64)
    vectors = rng.uniform(-1, 1, (keys.size, emb.vec_size)).astype(np.float32)
    t = {"keys": keys, "vectors": vectors}
    if emb.localized:
        t["slot_ids"] = rng.integers(0, emb.slot_num, size=keys.size).astype(np.uint64)
    return t

"""Reader of the graph JSON written by HugeCTR's ``Model.graph_to_json`` (FORMATS §2)."""

from __future__ import annotations

import json
from collections import Counter

from ..errors import GraphConfigError, GraphStructureError, UnsupportedLayerError
from ..ir import B, DataInput, Embedding, Graph, Layer, Output, SparseInput, fmt_shape
from ..layers.base import LayerError, Params, Registry, default_registry
from .files import read_text

EMBEDDING_TYPES = (
    "DistributedSlotSparseEmbeddingHash",
    "LocalizedSlotSparseEmbeddingHash",
    "LocalizedSlotSparseEmbeddingOneHot",
    "HybridSparseEmbedding",
)
MAX_SLOTS = 1 << 20


def load_graph(path, registry: Registry | None = None) -> Graph:
    text = read_text(path, "graph config")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphConfigError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}",
                               file=str(path), where=f"byte offset {e.pos}")
    except RecursionError:
        raise GraphConfigError("JSON nested too deeply", file=str(path))
    return parse_graph(doc, str(path), registry or default_registry())


def _tensor_names(value, where: str, file: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise GraphConfigError(f"must be a tensor name or a non-empty list of names, "
                               f"found {value!r:.80}", file=file, where=where)
    return names


def _wrap(e: LayerError, file: str, where: str, cls=GraphConfigError):
    field = f".{e.field}" if e.field else ""
    return cls(str(e), file=file, where=f"{where}{field}")


def parse_graph(doc, file: str, registry: Registry) -> Graph:
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list) or not doc["layers"]:
        raise GraphConfigError("expected an object with a non-empty 'layers' list "
                               "(is this a graph_to_json file?)", file=file, where="layers")
    blocks = doc["layers"]
    for i, b in enumerate(blocks):
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise GraphConfigError("each layer must be an object with a string 'type'",
                                   file=file, where=f"layers[{i}]")
    if blocks[0]["type"] != "Data":
        raise GraphConfigError(f"layers[0] must be the Data block, found {blocks[0]['type']!r}",
                               file=file, where="layers[0].type")
    data = _parse_data(blocks[0], file)
    embeddings: list[Embedding] = []
    i = 1
    while i < len(blocks) and blocks[i]["type"] in EMBEDDING_TYPES:
        embeddings.append(_parse_embedding(blocks[i], i, len(embeddings), data, file))
        i += 1

    layers: list[Layer] = []
    unknown: dict[str, list[int]] = {}
    for j in range(i, len(blocks)):
        block = blocks[j]
        t = block["type"]
        h = registry.get(t)
        if h is None:
            unknown.setdefault(t, []).append(j)
            continue
        where = f"layers[{j}] ({t})"
        layer = Layer(index=j, type=t,
                      bottoms=_tensor_names(block.get("bottom"), f"{where}.bottom", file),
                      tops=_tensor_names(block.get("top"), f"{where}.top", file), raw=block)
        for attr, (lo, hi) in (("bottoms", h.bottoms), ("tops", h.tops)):
            n = len(getattr(layer, attr))
            if not lo <= n <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                raise GraphConfigError(f"{t} takes {want} {attr[:-1]} tensor(s), found {n}",
                                       file=file, where=f"{where}.{attr[:-1]}")
        try:
            layer.params = h.parse(Params(block), layer)
        except LayerError as e:
            raise _wrap(e, file, where)
        layers.append(layer)
    if unknown:
        listing = "; ".join(f"{t} (layers {', '.join(map(str, idx))})" for t, idx in unknown.items())
        raise UnsupportedLayerError(f"{len(unknown)} unsupported layer type(s): {listing}",
                                    types=sorted(unknown), file=file)

    graph = Graph(data=data, embeddings=embeddings, layers=layers, shapes={},
                  model_name=str(doc.get("model_name", "")), source=file)
    _check_and_infer(graph, registry, file)
    return graph


def _parse_data(block: dict, file: str) -> DataInput:
    p = Params(block)
    try:
        label_top = p.value("label.top")
        label_dim = p.value("label.dim" if p.has("label.dim") else "label.label_dim")
        if isinstance(label_top, str):
            names = [label_top]
            dims = [Params({"d": label_dim}).int("d", lo=1)]
        else:
            names = _tensor_names(label_top, "layers[0].label.top", file)
            dims = p.int_list("label.label_dim", lo=1, min_len=1)
            if len(dims) != len(names):
                raise LayerError(f"{len(names)} label names but {len(dims)} label_dim values",
                                 "label.label_dim")
        dense_name = p.str("dense.top")
        dense_dim = p.int("dense.dense_dim", lo=0)
        sparse_blocks = p.value("sparse", [])
        if not isinstance(sparse_blocks, list):
            raise LayerError("must be a list", "sparse")
        sparse = []
        for k, sb in enumerate(sparse_blocks):
            sp = Params(sb if isinstance(sb, dict) else {})
            name = sp.str("top")
            slot_num = sp.int("slot_num", lo=1, hi=MAX_SLOTS)
            nnz = sp.value("nnz_per_slot", None)
            if nnz is None:
                nnz_list = [sp.int("max_feature_num_per_sample", 1, lo=1)] * slot_num
            elif isinstance(nnz, list):
                nnz_list = sp.int_list("nnz_per_slot", lo=0, hi=1 << 20)
            else:
                nnz_list = [sp.int("nnz_per_slot", lo=0, hi=1 << 20)] * slot_num
            if len(nnz_list) != slot_num:
                raise LayerError(f"nnz_per_slot has {len(nnz_list)} entries, slot_num is "
                                 f"{slot_num}", f"sparse[{k}].nnz_per_slot")
            sparse.append(SparseInput(name, slot_num, nnz_list,
                                      sp.bool("is_fixed_length", True)))
    except LayerError as e:
        raise _wrap(e, file, "layers[0] (Data)")
    return DataInput(names, dims, dense_name, dense_dim, sparse)


def _parse_embedding(block: dict, j: int, index: int, data: DataInput, file: str) -> Embedding:
    where = f"layers[{j}] ({block['type']})"
    p = Params(block)
    try:
        bottom = p.str("bottom")
        top = p.str("top")
        sp = data.sparse_input(bottom)
        if sp is None:
            raise LayerError(f"bottom {bottom!r} is not a sparse input of the Data block", "bottom")
        hp = "sparse_embedding_hparam"
        combiner = p.value(f"{hp}.combiner", "sum")
        if combiner in (0, 1):  # pre-v3.4 integer form
            combiner = ("sum", "mean")[combiner]
        if combiner not in ("sum", "mean"):
            raise LayerError(f"combiner must be 'sum' or 'mean', found {combiner!r}",
                             f"{hp}.combiner")
        emb = Embedding(
            index=index, type=block["type"], bottom=bottom, top=top,
            vec_size=p.int(f"{hp}.embedding_vec_size", lo=1, hi=1 << 16),
            combiner=combiner, slot_num=sp.slot_num, max_nnz=sp.max_nnz,
            max_vocabulary_size_global=p.int(f"{hp}.max_vocabulary_size_global", 0, hi=1 << 62),
            workspace_size_per_gpu_in_mb=p.int(f"{hp}.workspace_size_per_gpu_in_mb", 0,
                                               hi=1 << 40),
            optimizer=str(p.value("optimizer.type", "")),
            update_type=str(p.value("optimizer.update_type", "")),
            slot_size_array=p.int_list(f"{hp}.slot_size_array", [], hi=1 << 62),
        )
    except LayerError as e:
        raise _wrap(e, file, where)
    return emb


def _check_and_infer(graph: Graph, registry: Registry, file: str) -> None:
    """Validate tensor names, order layers topologically, and infer every shape."""
    data = graph.data
    shapes = graph.shapes
    produced_by: dict[str, str] = {}

    def produce(name: str, what: str, shape):
        if name in produced_by:
            raise GraphStructureError(f"tensor {name!r} is produced twice: by {produced_by[name]} "
                                      f"and by {what}", file=file, where=what)
        produced_by[name] = what
        shapes[name] = shape

    for name, dim in zip(data.label_names, data.label_dims):
        produce(name, "Data label", (B, dim))
    produce(data.dense_name, "Data dense", (B, data.dense_dim))
    for sp in data.sparse:
        produce(sp.name, "Data sparse", (B, sp.slot_num, sp.max_nnz))
    for emb in graph.embeddings:
        produce(emb.top, f"embedding {emb.type} #{emb.index}", emb.out_shape)
    layer_tops = Counter(t for l in graph.layers for t in l.tops)
    for t, count in layer_tops.items():
        if count > 1 or t in produced_by:
            owners = [l.label for l in graph.layers if t in l.tops]
            if t in produced_by:
                owners.insert(0, produced_by[t])
            raise GraphStructureError(f"tensor {t!r} is produced more than once "
                                      f"({'; '.join(owners)})", file=file, where=f"top {t!r}")
    sparse_names = {sp.name for sp in data.sparse}
    for layer in graph.layers:
        for bname in layer.bottoms:
            if bname in sparse_names:
                raise GraphStructureError(
                    f"{layer.label} reads sparse input {bname!r} directly; only embeddings can",
                    file=file, where=f"layers[{layer.index}].bottom")
            if bname not in produced_by and bname not in layer_tops:
                raise GraphStructureError(
                    f"{layer.label} reads tensor {bname!r}, which nothing produces (embedding "
                    f"collections are not saved in graph JSON)", file=file,
                    where=f"layers[{layer.index}].bottom")

    # Kahn's algorithm, keeping JSON order among ready layers.
    pending = list(graph.layers)
    ordered: list = []
    while pending:
        ready = next((l for l in pending if all(b in shapes for b in l.bottoms)), None)
        if ready is None:
            names = ", ".join(l.label for l in pending[:5])
            raise GraphStructureError(f"the layers form a cycle or wait on each other: {names}",
                                      file=file, where="layers")
        pending.remove(ready)
        ordered.append(ready)
        h = registry.get(ready.type)
        ready.in_shapes = [shapes[b] for b in ready.bottoms]
        try:
            out = h.infer(ready)
        except LayerError as e:
            ins = ", ".join(fmt_shape(s) for s in ready.in_shapes)
            raise GraphStructureError(f"{e} (inputs {ins})", file=file,
                                      where=f"layers[{ready.index}] ({ready.type})"
                                      + (f".{e.field}" if e.field else ""))
        if len(out) < len(ready.tops):
            out = list(out) + [out[0]] * (len(ready.tops) - len(out))
        ready.out_shapes = list(out)
        for t, s in zip(ready.tops, ready.out_shapes):
            shapes[t] = s
    graph.layers = ordered
    _collect_outputs(graph, registry, file)


def _collect_outputs(graph: Graph, registry: Registry, file: str) -> None:
    losses = [l for l in graph.layers if registry.get(l.type).is_loss]
    if not losses:
        raise GraphStructureError("the graph has no loss layer, so no prediction output",
                                  file=file, where="layers")
    by_label = {}
    for l in losses:
        label = l.bottoms[1]
        if label in by_label:
            raise GraphStructureError(f"label {label!r} feeds two loss layers", file=file,
                                      where=f"layers[{l.index}].bottom")
        by_label[label] = l
    order = [n for n in graph.data.label_names if n in by_label]
    order += [n for n in by_label if n not in order]
    graph.outputs = [Output(n, by_label[n].out_shapes[0]) for n in order]

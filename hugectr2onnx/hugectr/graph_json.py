"""Reader of the graph JSON written by HugeCTR's ``Model.graph_to_json`` (FORMATS §2)."""

from __future__ import annotations

import heapq
import json
import numbers
from collections import Counter, defaultdict

from ..errors import (ConversionError, GraphConfigError, GraphProblemsError, GraphStructureError,
                      UnsupportedLayerError)
from ..ir import B, Batch, DataInput, Embedding, Graph, Layer, Output, SparseInput, fmt_shape
from ..layers.base import MAX_DIM, LayerError, Params, Registry, default_registry
from .files import read_text

EMBEDDING_TYPES = (
    "DistributedSlotSparseEmbeddingHash",
    "LocalizedSlotSparseEmbeddingHash",
    "LocalizedSlotSparseEmbeddingOneHot",
    "HybridSparseEmbedding",
)
MAX_SLOTS = 1 << 20
# What a handler's parse/infer may raise on hostile values it did not foresee; these become
# typed errors naming the layer. Other exceptions are bugs and propagate.
HOSTILE_INPUT_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError,
                        RecursionError)


def load_graph(path, registry: Registry | None = None, collection=None) -> Graph:
    """``collection``: a parsed embedding-collection Description (collection_description)."""
    text = read_text(path, "graph config")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphConfigError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}",
                               file=str(path), where=f"byte offset {e.pos}")
    except RecursionError:
        raise GraphConfigError("JSON nested too deeply", file=str(path))
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise GraphConfigError(f"malformed JSON: {e}", file=str(path))
    return parse_graph(doc, str(path), registry or default_registry(), collection)


def _tensor_names(value, where: str, file: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise GraphConfigError(f"must be a tensor name or a non-empty list of names, "
                               f"found {value!r:.80}", file=file, where=where)
    return names


def _describe(e: Exception) -> tuple[str, str | None]:
    """Message and field of a handler's LayerError, or of an exception it did not foresee."""
    if isinstance(e, LayerError):
        return str(e), e.field
    return f"invalid parameters or inputs ({type(e).__name__}: {str(e):.200})", None


def _wrap(e: Exception, file: str, where: str, cls=GraphConfigError, suffix: str = ""):
    message, field = _describe(e)
    return cls(message + suffix, file=file, where=f"{where}.{field}" if field else where)


def parse_graph(doc, file: str, registry: Registry, collection=None) -> Graph:
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
    data = _parse_data(blocks[0], file)  # everything depends on it: its error stops here
    problems = Problems(file)
    embeddings: list[Embedding] = []
    sparse_by_name = {sp.name: sp for sp in reversed(data.sparse)}  # first wins, as in ir
    # tops of blocks that failed to parse (or have no handler): known names without shapes,
    # each with the block that produces it
    broken_tops: dict[str, str] = {}
    i = 1
    while i < len(blocks) and blocks[i]["type"] in EMBEDDING_TYPES:
        with problems.collect():
            embeddings.append(_parse_embedding(blocks[i], i, len(embeddings), sparse_by_name,
                                               file))
            i += 1
            continue
        if isinstance(blocks[i].get("top"), str):
            broken_tops.setdefault(blocks[i]["top"], (i, f"embedding {blocks[i]['type']} #{i}"))
        i += 1
    for j in range(i, len(blocks)):
        if blocks[j]["type"] in EMBEDDING_TYPES + ("Data",):
            raise GraphStructureError(f"a {blocks[j]['type']} block after the dense layers; the "
                                      f"Data block comes first, then all embeddings",
                                      file=file, where=f"layers[{j}].type")

    unknown: dict[str, list[int]] = {}
    for j in range(i, len(blocks)):
        if registry.get(blocks[j]["type"]) is None:
            unknown.setdefault(blocks[j]["type"], []).append(j)
    if unknown:  # all of them as one problem, listed first
        problems.add(UnsupportedLayerError(f"{len(unknown)} unsupported layer type(s): "
                                           f"{_listing(unknown)}", types=sorted(unknown),
                                           file=file))
    layers = []
    for j in range(i, len(blocks)):
        if blocks[j]["type"] not in unknown:
            with problems.collect():
                layers.append(_parse_layer(blocks[j], j, registry.get(blocks[j]["type"]), file))
                continue
        tops = blocks[j].get("top")  # unknown or broken: names known, shapes not
        for t in [tops] if isinstance(tops, str) else tops if isinstance(tops, list) else []:
            if isinstance(t, str):
                broken_tops.setdefault(t, (j, f"layer #{j} {blocks[j]['type']} (top {t})"))
    if collection is not None:
        from .collection_description import collection_to_ir
        taken = {e.bottom for e in embeddings}
        free = [sp.name for sp in data.sparse if sp.name not in taken]
        ebc, synthetic = collection_to_ir(collection, data, free, len(embeddings), file)
        embeddings += ebc
        layers = synthetic + layers

    with problems.collect():
        gpus = _solver_gpus(doc, file)
        for emb in embeddings:
            emb.solver_gpus = gpus
    graph = Graph(data=data, embeddings=embeddings, layers=layers, shapes={},
                  model_name=str(doc.get("model_name", "")), source=file)
    graph.inference = doc.get("inference") if isinstance(doc.get("inference"), dict) else {}
    if collection is not None:  # a mis-described collection explains the dangling reads
        _check_collection_read(graph, collection, file)
    _check_and_infer(graph, registry, file, problems, broken_tops)
    return graph


def _check_collection_read(graph: Graph, collection, file: str) -> None:
    """Every output the description declares must be read by some dense layer."""
    from .collection_description import collection_tops
    read = {b for layer in graph.layers if layer.raw.get("type") != "EmbeddingCollection"
            for b in layer.bottoms}
    unread = [t for t in collection_tops(collection) if t not in read]
    if unread:
        made = {t for layer in graph.layers for t in layer.tops} | {
            e.top for e in graph.embeddings} | {graph.data.dense_name, *graph.data.label_names}
        dangling = sorted(read - made)
        hint = f"; the layers read {dangling[:10]}, which nothing produces" if dangling else ""
        raise GraphStructureError(
            f"the embedding collection description {collection.path} outputs {unread[:10]}, "
            f"which no layer of the graph JSON reads (check output.top / lookups[i].top)"
            f"{hint}", file=file, where="layers")


def _solver_gpus(doc: dict, file: str) -> int | None:
    """GPU count of a hand-written (pre-v3.4 style) config: ``solver.gpu`` lists device ids,
    one list per node for several nodes (``[[0, 1], [0, 1]]`` is four GPUs)."""
    solver = doc.get("solver")
    if not isinstance(solver, dict) or "gpu" not in solver:
        return None
    ids = solver["gpu"]
    nodes = ids if isinstance(ids, list) and ids and all(isinstance(n, list) for n in ids) \
        else [ids]
    if not all(isinstance(n, list) and n and all(type(i) is int and i >= 0 for i in n)
               for n in nodes):
        raise GraphConfigError(f"must be a list of GPU ids (or one list per node), found "
                               f"{ids!r:.80}", file=file, where="solver.gpu")
    return sum(len(n) for n in nodes)


class Problems:
    """Every problem of one graph JSON, raised together at the end (``GraphProblemsError``)."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[ConversionError] = []

    def add(self, error: ConversionError) -> None:
        self.errors.append(error)

    def collect(self):
        problems = self

        class _Collect:
            def __enter__(self):
                return self

            def __exit__(self, kind, value, tb):
                if isinstance(value, GraphConfigError) and not isinstance(value, GraphProblemsError):
                    problems.add(value)
                    return True
                return False
        return _Collect()

    def raise_all(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise GraphProblemsError(self.errors, file=self.file)


def _listing(unknown: dict[str, list[int]], most: int = 20) -> str:
    def places(idx):
        more = f" and {len(idx) - most} more" if len(idx) > most else ""
        return ", ".join(map(str, idx[:most])) + more
    items = [f"{t:.80} (layers {places(idx)})" for t, idx in list(unknown.items())[:most]]
    more = f"; and {len(unknown) - most} more types" if len(unknown) > most else ""
    return "; ".join(items) + more


def _parse_layer(block: dict, j: int, h, file: str) -> Layer:
    t = block["type"]
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
    except (LayerError,) + HOSTILE_INPUT_ERRORS as e:
        raise _wrap(e, file, where) from e
    return layer


def _name(p: Params, path: str) -> str:
    name = p.str(path)
    if not name:
        raise LayerError(f"field '{path}' must be a non-empty tensor name", path)
    return name


def _parse_data(block: dict, file: str) -> DataInput:
    p = Params(block)
    try:
        label_top = p.value("label.top", "label")  # hand-written inference configs omit it
        dim_key = "label.label_dim"
        if isinstance(label_top, str):
            names = [label_top if label_top else _name(p, "label.top")]
            dims = [p.int(dim_key, lo=1)]
        else:
            names = _tensor_names(label_top, "layers[0] (Data).label.top", file)
            dims = p.int_list(dim_key, lo=1, min_len=1)
            if len(dims) != len(names):
                raise LayerError(f"{len(names)} label names but {len(dims)} label_dim values",
                                 dim_key)
        dense_name = _name(p, "dense.top")
        dense_dim = p.int("dense.dense_dim", lo=0)
        sparse_blocks = p.value("sparse", [])
        if not isinstance(sparse_blocks, list):
            raise LayerError(f"field 'sparse' must be a list, found {sparse_blocks!r:.80}",
                             "sparse")
        sparse = [_parse_sparse_input(sb, k) for k, sb in enumerate(sparse_blocks)]
    except LayerError as e:
        raise _wrap(e, file, "layers[0] (Data)") from e
    return DataInput(names, dims, dense_name, dense_dim, sparse)


def _parse_sparse_input(block, k: int) -> SparseInput:
    at = f"sparse[{k}]"
    if not isinstance(block, dict):
        raise LayerError(f"field '{at}' must be an object, found {block!r:.80}", at)
    sp = Params(block)
    try:
        name = _name(sp, "top")
        slot_num = sp.int("slot_num", lo=1, hi=MAX_SLOTS)
        nnz = sp.value("nnz_per_slot", None)
        if nnz is None:  # pre-v3.4 hand-written configs
            nnz_list = [sp.int("max_feature_num_per_sample", 1, lo=1, hi=MAX_SLOTS)] * slot_num
        elif isinstance(nnz, list):
            nnz_list = sp.int_list("nnz_per_slot", lo=0, hi=MAX_SLOTS)
        else:
            nnz_list = [sp.int("nnz_per_slot", lo=0, hi=MAX_SLOTS)] * slot_num
        if len(nnz_list) != slot_num:
            raise LayerError(f"nnz_per_slot has {len(nnz_list)} entries, slot_num is "
                             f"{slot_num}", "nnz_per_slot")
        fixed = sp.bool("is_fixed_length", True)
    except LayerError as e:
        raise LayerError(str(e), f"{at}.{e.field}" if e.field else at) from e
    return SparseInput(name, slot_num, nnz_list, fixed)


def _parse_embedding(block: dict, j: int, index: int, sparse_by_name: dict,
                     file: str) -> Embedding:
    where = f"layers[{j}] ({block['type']})"
    p = Params(block)
    try:
        bottom = _name(p, "bottom")
        top = _name(p, "top")
        sp = sparse_by_name.get(bottom)
        if sp is None:
            raise LayerError(f"bottom {bottom!r} is not a sparse input of the Data block", "bottom")
        hp = "sparse_embedding_hparam"
        combiner = p.value(f"{hp}.combiner", "sum")
        if type(combiner) is int and combiner in (0, 1):  # pre-v3.4 integer form
            combiner = ("sum", "mean")[combiner]
        if not isinstance(combiner, str) or combiner not in ("sum", "mean"):
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
        raise _wrap(e, file, where) from e
    return emb


def _check_and_infer(graph: Graph, registry: Registry, file: str,
                     problems: Problems | None = None, broken_tops: dict | None = None) -> None:
    """Validate tensor names, order layers topologically, and infer every shape; all
    problems are collected and raised together."""
    problems = problems or Problems(file)
    broken_tops = broken_tops or {}
    data = graph.data
    shapes = graph.shapes
    produced_by: dict[str, str] = {}

    def produce(name: str, what: str, shape):
        if name in produced_by:
            problems.add(GraphStructureError(f"tensor {name!r} is produced twice: by "
                                             f"{produced_by[name]} and by {what}", file=file,
                                             where=what))
            return
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
        if count > 1 or t in produced_by or t in broken_tops:
            owners = [(l.index, l.label) for l in graph.layers if t in l.tops]
            if t in broken_tops:  # a block with its own problem produces it too
                owners.append(broken_tops[t])
            owners = [label for _, label in sorted(owners)]
            if t in produced_by:
                owners.insert(0, produced_by[t])
            problems.add(GraphStructureError(f"tensor {t!r} is produced more than once "
                                             f"({'; '.join(owners)})", file=file,
                                             where=f"top {t!r}"))
    sparse_names = {sp.name for sp in data.sparse}
    dangling: set[str] = set()
    for layer in graph.layers:
        for bname in layer.bottoms:
            if bname in sparse_names:
                problems.add(GraphStructureError(
                    f"{layer.label} reads sparse input {bname!r} directly; only embeddings can",
                    file=file, where=f"layers[{layer.index}].bottom"))
            elif bname not in produced_by and bname not in layer_tops and \
                    bname not in broken_tops:
                dangling.add(bname)
                problems.add(GraphStructureError(
                    f"{layer.label} reads tensor {bname!r}, which nothing produces. If it is "
                    f"the output of an embedding collection (EmbeddingCollectionConfig, "
                    f"which graph_to_json does not save), describe the collection in a JSON "
                    f"file and pass it with --embedding-collection / embedding_collection= "
                    f"(docs/embedding_collection.md), or write both files with "
                    f"'hugectr2onnx record train.py'", file=file,
                    where=f"layers[{layer.index}].bottom"))

    _infer_in_order(graph, registry, file, problems, set(broken_tops) | dangling)
    problems.raise_all()
    _check_labels(graph, registry, file)
    _collect_outputs(graph, registry, file)


def _infer_in_order(graph: Graph, registry: Registry, file: str, problems: Problems,
                    failed: set[str]) -> None:
    """Kahn's algorithm in linear time, taking the earliest ready layer in JSON order.
    A layer whose shapes cannot be inferred is reported; the layers after it wait. ``failed``:
    tensors whose producers already have a problem."""
    shapes = graph.shapes
    waiting: dict[str, list[int]] = defaultdict(list)
    missing = []
    ready: list[int] = []
    for pos, layer in enumerate(graph.layers):
        need = {b for b in layer.bottoms if b not in shapes}
        missing.append(len(need))
        for b in need:
            waiting[b].append(pos)
        if not need:
            ready.append(pos)
    heapq.heapify(ready)
    ordered: list = []
    while ready:
        layer = graph.layers[heapq.heappop(ready)]
        ordered.append(layer)
        try:
            _infer_layer(layer, registry.get(layer.type), shapes, file)
        except GraphConfigError as e:
            problems.add(e)
            failed.update(layer.tops)
            continue
        for t in layer.tops:
            for pos in waiting.pop(t, ()):
                missing[pos] -= 1
                if missing[pos] == 0:
                    heapq.heappush(ready, pos)
    done = {id(l) for l in ordered}
    stuck = _cycle_members([l for l in graph.layers if id(l) not in done], failed)
    if stuck:
        stuck = [l.label for l in stuck]
        more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
        problems.add(GraphStructureError(f"the layers form a cycle or wait on each other: "
                                         f"{', '.join(stuck[:5])}{more}", file=file,
                                         where="layers"))
    graph.layers = ordered


def _cycle_members(waiting: list[Layer], failed: set[str]) -> list[Layer]:
    """The waiting layers that do not merely wait on a layer with its own problem."""
    blocked = set(failed)
    left = list(waiting)
    changed = True
    while changed:
        changed = False
        for layer in list(left):
            if any(b in blocked for b in layer.bottoms):
                blocked.update(layer.tops)
                left.remove(layer)
                changed = True
    return left


def _infer_layer(layer: Layer, h, shapes: dict, file: str) -> None:
    where = f"layers[{layer.index}] ({layer.type})"
    layer.in_shapes = [shapes[b] for b in layer.bottoms]
    try:
        out = list(h.infer(layer))
    except (LayerError,) + HOSTILE_INPUT_ERRORS as e:
        ins = ", ".join(fmt_shape(s) for s in layer.in_shapes)
        raise _wrap(e, file, where, GraphStructureError, f" (inputs {ins})") from e
    if len(out) < len(layer.tops):
        out = out + [out[0]] * (len(layer.tops) - len(out))
    for shape in out:
        if not _valid_shape(shape):
            raise GraphStructureError(f"inferred output shape {shape!r:.80} is not valid: every "
                                      f"dimension must be an integer in [0, {MAX_DIM}] (are the "
                                      f"layer parameters corrupt?)", file=file, where=where)
    layer.out_shapes = out
    for t, s in zip(layer.tops, out):
        shapes[t] = s


def _valid_shape(shape) -> bool:
    if not isinstance(shape, tuple) or not shape:
        return False
    first, rest = shape[0], shape[1:]
    if not (isinstance(first, Batch) and first.scale > 0 or _valid_dim(first)):
        return False
    return all(_valid_dim(d) for d in rest)


def _valid_dim(d) -> bool:
    return isinstance(d, numbers.Integral) and not isinstance(d, bool) and 0 <= d <= MAX_DIM


def _check_labels(graph: Graph, registry: Registry, file: str) -> None:
    """Labels and loss values exist only in training: only loss layers (as their second
    input) and the Slices that split labels may read labels, and a loss must read one there."""
    label_like = set(graph.data.label_names)
    loss_values = set()  # a loss's own top is the training loss: nothing reads it
    for layer in graph.layers:  # topological order: a Slice of a label comes first
        if registry.get(layer.type).splits_labels and layer.bottoms[0] in label_like:
            label_like.update(layer.tops)
        if registry.get(layer.type).is_loss:
            loss_values.update(layer.tops)
    for layer in graph.layers:
        is_loss = registry.get(layer.type).is_loss
        for k, b in enumerate(layer.bottoms):
            if b in loss_values:
                raise GraphStructureError(
                    f"{layer.label} reads {b!r}, the value of a loss layer, which exists only "
                    f"in training", file=file, where=f"layers[{layer.index}].bottom")
            if is_loss and k == 1:
                if b not in label_like:
                    raise GraphStructureError(
                        f"{layer.label} reads {b!r} as its label, which is no Data label",
                        file=file, where=f"layers[{layer.index}].bottom")
            elif b in label_like and not (registry.get(layer.type).splits_labels and k == 0):
                raise GraphStructureError(
                    f"{layer.label} reads label tensor {b!r}; labels are not available at "
                    f"inference", file=file, where=f"layers[{layer.index}].bottom")


def _collect_outputs(graph: Graph, registry: Registry, file: str) -> None:
    losses = [l for l in graph.layers if registry.get(l.type).is_loss]
    if not losses:  # an inference graph (HugeCTR's inference session, Triton backend)
        graph.outputs = _final_tops(graph, registry)
        if not graph.outputs:
            raise GraphStructureError("the graph has no loss layer and no layer output that "
                                      "nothing reads, so no prediction output", file=file,
                                      where="layers")
        return
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


def _final_tops(graph: Graph, registry: Registry) -> list[Output]:
    """The tops no layer reads, in JSON order: the graph's outputs when it has no loss."""
    read = {b for l in graph.layers for b in l.bottoms}
    outputs = []
    for layer in sorted(graph.layers, key=lambda l: l.index):
        n = registry.get(layer.type).value_tops or len(layer.tops)
        outputs += [Output(t, s) for t, s in zip(layer.tops[:n], layer.out_shapes[:n])
                    if t not in read]
    return outputs

"""The model's self-description in ONNX ``metadata_props`` (schema: docs/metadata.md).

Keys are namespaced ``hugectr2onnx.*`` and values are JSON, so a consumer needs neither the
HugeCTR files nor this package to feed the model: the Data block (labels, dense input, key
inputs with slots and hotness), the training key type, the padding key, the Parquet
``slot_size_array`` and per table its input, combiner, size and lookup.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..data.layout import DataLayout, SparseSlots
from ..errors import InputFileError, UsageError

SCHEMA_VERSION = 1
PREFIX = "hugectr2onnx."


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_metadata(graph, *, convert_embedding: bool, key_type: str, padding_key,
                   slot_size_array=None, tables: list[dict] | None = None,
                   graph_sha256: str = "") -> dict[str, str]:
    """``metadata_props`` of a converted model. ``tables``: per embedding the converter's
    ``{"keys", "strategy"}`` (None without tables)."""
    from .. import __version__

    layout = DataLayout.from_data_input(graph.data, key_type=key_type, padding_key=padding_key,
                                        slot_size_array=slot_size_array or ())
    data = layout.to_dict()
    data["padding_key"] = padding_key  # None: the model has no padding key
    data["inputs"] = "keys" if convert_embedding else "embedding_vectors"
    embeddings = []
    for k, emb in enumerate(graph.embeddings):
        info = (tables or [])[k] if tables and k < len(tables) else {}
        embeddings.append({
            "name": emb.top, "input": emb.bottom, "type": emb.type, "combiner": emb.combiner,
            "vec_size": emb.vec_size, "slot_num": emb.slot_num, "max_nnz": emb.max_nnz,
            "num_keys": info.get("keys"), "key_type": key_type,
            "lookup": info.get("strategy"), "padding_key": padding_key,
            "slot_size_array": list(emb.slot_size_array),
            "table": getattr(emb, "table_name", "") or emb.top})
    props = {"schema": SCHEMA_VERSION, "version": __version__, "graph_sha256": graph_sha256,
             "data": data, "embeddings": embeddings,
             "outputs": [{"name": o.name, "dim": int(o.shape[-1])} for o in graph.outputs]}
    return {PREFIX + k: json.dumps(v, separators=(",", ":")) for k, v in props.items()}


def set_metadata(model, props: dict[str, str]) -> None:
    """Replace this package's entries of ``model.metadata_props`` (others are kept)."""
    from .. import __version__

    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in keep + sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "hugectr2onnx"
    model.producer_version = __version__


def load_proto(path):
    """The ONNX model without its external data (metadata and graph only)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise InputFileError("file not found" if not p.exists() else "not a file", file=str(p))
    try:
        return onnx.load(str(p), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise InputFileError(f"not an ONNX model: {type(e).__name__}: {e}", file=str(p)) from None


def read_metadata(model) -> dict:
    """This package's metadata of a model (proto or path), JSON-decoded, without prefix."""
    if not hasattr(model, "metadata_props"):
        model = load_proto(model)
    out = {}
    for p in model.metadata_props:
        if p.key.startswith(PREFIX):
            try:
                out[p.key[len(PREFIX):]] = json.loads(p.value)
            except ValueError:
                out[p.key[len(PREFIX):]] = p.value
    return out


def layout_from_model(model) -> tuple[DataLayout, bool]:
    """The model's data layout and whether it came from our metadata. Without metadata
    (an older or foreign conversion) it is read off the graph's inputs and outputs: the
    float [batch, n] input is the dense one, int64 [batch, slots, nnz] inputs take keys
    (fixed length), each output is a label of its width."""
    if not hasattr(model, "graph"):
        model = load_proto(model)
    meta = read_metadata(model)
    data = meta.get("data")
    if isinstance(data, dict):
        if data.get("inputs") == "embedding_vectors":
            raise UsageError("the model takes embedding vectors, not keys: convert it with "
                             "--convert-embedding to score HugeCTR datasets")
        try:
            layout = DataLayout.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"malformed hugectr2onnx.data metadata: {e}") from None
        ragged = [s.name for s in layout.sparse
                  if not s.is_fixed_length or len(set(s.nnz_per_slot)) > 1]
        if data.get("padding_key", -1) is None and ragged:
            raise UsageError(f"the model has no padding key, so the absent keys of "
                             f"{', '.join(ragged)} cannot be fed; convert it with a padding key")
        return layout, True
    dense, sparse = None, []
    for inp in model.graph.input:
        t = inp.type.tensor_type
        dims = [d.dim_value for d in t.shape.dim]
        if t.elem_type == 1 and len(dims) == 2 and dense is None:
            dense = (inp.name, dims[1])
        elif t.elem_type == 7 and len(dims) == 3:
            sparse.append(SparseSlots(inp.name, dims[1], (dims[2],) * dims[1], True))
        else:
            raise UsageError(f"input {inp.name} is neither a dense [batch, n] float nor an "
                             "int64 key input [batch, slots, nnz]; convert with "
                             "--convert-embedding to score HugeCTR datasets")
    if dense is None:
        raise UsageError("the model has no dense [batch, n] float input")
    outs = [(o.name, o.type.tensor_type.shape.dim[-1].dim_value or 1) for o in model.graph.output]
    return DataLayout(tuple(n for n, _ in outs), tuple(d for _, d in outs), dense[0], dense[1],
                      tuple(sparse)), False


def value_infos(values) -> list[dict]:
    """Name, numpy dtype name and shape (symbolic dims by name) of graph inputs/outputs."""
    from onnx import helper

    out = []
    for v in values:
        t = v.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"
        shape = [d.dim_param or d.dim_value for d in t.shape.dim]
        out.append({"name": v.name, "dtype": dtype, "shape": shape})
    return out

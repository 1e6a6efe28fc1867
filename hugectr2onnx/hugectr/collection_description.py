"""The embedding-collection description file (docs/embedding_collection.md).

HugeCTR saves an embedding collection nowhere but in ``embedding_dump``, which records no
table names, lookups, inputs or combiners. The user states them in a few lines of JSON;
every field that the dump's ``meta_data`` or the graph JSON can confirm is cross-checked.
The collection then becomes IR embeddings, one per lookup (tables shared by name), plus a
Concat and a Reshape for the batch-major ``[B, sum of widths]`` output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CollectionError
from ..ir import DataInput, Embedding, Layer
from .embedding_collection import (as_int64_table, check_complete, check_static_keys,
                                   read_dump_table, read_meta_data)
from .files import read_text

COMBINERS = {"sum": "sum", "average": "mean", "concat": "concat"}  # description -> IR
LAYOUTS = ("batch_major", "feature_major")
KEY_TYPES = ("uint32", "int64")
COLLECTION_TYPE = "EmbeddingCollection"
MAX_VOCAB = 1 << 48


@dataclass
class TableSpec:
    name: str
    vocab: int  # >= 0: static table of rows [0, vocab); -1: dynamic hash table
    ev_size: int
    id: int = -1  # HugeCTR's table id: order of first use by the lookups

    @property
    def static(self) -> bool:
        return self.vocab >= 0


@dataclass
class LookupSpec:
    input: str | None
    table: str
    combiner: str  # as written: sum | average | concat
    top: str | None


@dataclass
class Description:
    path: str
    dump_dir: Path
    layout: str
    top: str | None
    key_type: str | None
    tables: list[TableSpec]
    lookups: list[LookupSpec]
    by_name: dict[str, TableSpec] = field(default_factory=dict)


def _fail(msg: str, path: str, where: str) -> CollectionError:
    return CollectionError(msg, file=path, where=where)


def _str(obj: dict, key: str, path: str, where: str, required=True, choices=None):
    v = obj.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise _fail(f"'{key}' must be a non-empty string, found {v!r:.80}", path,
                    f"{where}.{key}")
    if choices and v not in choices:
        raise _fail(f"'{key}' must be one of {list(choices)}, found {v!r:.80}", path,
                    f"{where}.{key}")
    return v


def _int(obj: dict, key: str, path: str, where: str, lo: int, hi: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _fail(f"'{key}' must be an integer in [{lo}, {hi}], found {v!r:.80}", path,
                    f"{where}.{key}")
    return v


FIELDS = {"document": {"dump_dir", "output", "tables", "lookups", "key_type"},
          "output": {"layout", "top"}, "tables": {"name", "vocab", "ev_size"},
          "lookups": {"input", "table", "combiner", "top"}}


def _object(v, path: str, where: str, kind: str) -> dict:
    """A JSON object with only the fields of ``kind`` (a misspelt field is an error, not a
    silently ignored one)."""
    if not isinstance(v, dict):
        raise _fail(f"must be an object, found {v!r:.80}", path, where)
    extra = sorted(set(v) - FIELDS[kind])
    if extra:
        at = extra[0] if where == "document" else f"{where}.{extra[0]}"
        raise _fail(f"unknown field(s) {extra}; the fields are {sorted(FIELDS[kind])}", path,
                    at)
    return v


def load_description(path) -> Description:
    text = read_text(path, "embedding collection description")
    path = str(path)
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as e:
        raise _fail(f"malformed JSON: {e}", path, "document")
    return parse_description(doc, path)


def parse_description(doc, path: str) -> Description:
    doc = _object(doc, path, "document", "document")
    dump_dir = _str(doc, "dump_dir", path, "document")
    out = _object(doc.get("output", {"layout": "batch_major"}), path, "output", "output")
    layout = _str(out, "layout", path, "output", choices=LAYOUTS)
    top = _str(out, "top", path, "output", required=layout == "batch_major")
    if layout == "feature_major" and top is not None:
        raise _fail("feature_major has one top per lookup ('lookups[i].top'), not "
                    "'output.top'", path, "output.top")
    key_type = _str(doc, "key_type", path, "document", required=False, choices=KEY_TYPES)
    tables_raw, lookups_raw = doc.get("tables"), doc.get("lookups")
    for key, v in (("tables", tables_raw), ("lookups", lookups_raw)):
        if not isinstance(v, list) or not v:
            raise _fail(f"'{key}' must be a non-empty list, found {v!r:.80}", path, key)
    tables, by_name = [], {}
    for i, t in enumerate(tables_raw):
        where = f"tables[{i}]"
        t = _object(t, path, where, "tables")
        spec = TableSpec(_str(t, "name", path, where), _int(t, "vocab", path, where, -1,
                                                              MAX_VOCAB),
                         _int(t, "ev_size", path, where, 1, 1 << 16))
        if spec.name in by_name:
            raise _fail(f"table name {spec.name!r} appears twice", path, f"{where}.name")
        by_name[spec.name] = spec
        tables.append(spec)
    lookups = []
    next_id = 0
    for i, lk in enumerate(lookups_raw):
        where = f"lookups[{i}]"
        lk = _object(lk, path, where, "lookups")
        name = _str(lk, "table", path, where)
        if name not in by_name:
            raise _fail(f"table {name!r} is not among the tables {sorted(by_name)[:20]}",
                        path, f"{where}.table")
        if by_name[name].id < 0:  # HugeCTR numbers tables in order of first use
            by_name[name].id = next_id
            next_id += 1
        ltop = _str(lk, "top", path, where, required=layout == "feature_major")
        if layout == "batch_major" and ltop is not None:
            raise _fail("batch_major lookups have no 'top' of their own; the output is "
                        "'output.top'", path, f"{where}.top")
        lookups.append(LookupSpec(_str(lk, "input", path, where, required=False), name,
                                  _str(lk, "combiner", path, where, choices=tuple(COMBINERS)),
                                  ltop))
    unused = [t.name for t in tables if t.id < 0]
    if unused:
        raise _fail(f"table(s) {unused[:20]} serve no lookup; HugeCTR knows a table only "
                    f"through its lookups", path, "tables")
    dump = Path(dump_dir)
    if not dump.is_absolute():
        dump = Path(path).resolve().parent / dump
    return Description(path, dump, layout, top, key_type, tables, lookups, by_name)


# --------------------------------------------------------------------------- graph side
def collection_to_ir(desc: Description, data: DataInput, free_inputs: list[str],
                     first_index: int, graph_file: str) -> tuple[list[Embedding], list[Layer]]:
    """One Embedding per lookup (tables shared by name) and, for batch_major, the Concat +
    Reshape that make HugeCTR's ``[B, sum of widths]`` tensor. ``free_inputs``: the Data
    block's sparse inputs that no legacy embedding reads; lookup i reads the i-th."""
    if len(desc.lookups) != len(free_inputs):
        raise _fail(f"{len(desc.lookups)} lookups, but the graph JSON {graph_file} has "
                    f"{len(free_inputs)} sparse inputs for the collection {free_inputs[:20]} "
                    f"(lookup i reads sparse input i, in Data order)", desc.path, "lookups")
    embeddings = []
    for i, (lk, name) in enumerate(zip(desc.lookups, free_inputs)):
        where = f"lookups[{i}]"
        if lk.input is not None and lk.input != name:
            raise _fail(f"input {lk.input!r}, but sparse input {i} of the graph JSON "
                        f"{graph_file} is {name!r} (lookup i reads sparse input i, in Data "
                        f"order)", desc.path, f"{where}.input")
        sp = data.sparse_input(name)
        if sp.slot_num != 1:
            raise _fail(f"sparse input {name!r} of the graph JSON {graph_file} has slot_num "
                        f"{sp.slot_num}; an embedding collection reads one slot per input",
                        desc.path, f"{where}.input")
        table = desc.by_name[lk.table]
        top = lk.top if desc.layout == "feature_major" else f"{desc.top}{i}"
        embeddings.append(Embedding(
            index=first_index + i, type=COLLECTION_TYPE, bottom=name, top=top,
            vec_size=table.ev_size, combiner=COMBINERS[lk.combiner], slot_num=1,
            max_nnz=sp.max_nnz, max_vocabulary_size_global=max(table.vocab, 0),
            table_name=table.name))
    layers: list[Layer] = []
    if desc.layout == "batch_major":
        width = sum(e.out_width for e in embeddings)
        source = {"type": COLLECTION_TYPE, "description": desc.path}
        bottom = embeddings[0].top
        if len(embeddings) > 1:
            bottom = f"{desc.top}/concat"
            layers.append(Layer(index=-1, type="Concat", bottoms=[e.top for e in embeddings],
                                tops=[bottom], params={"axis": 2}, raw=source))
        layers.append(Layer(index=-1, type="Reshape", bottoms=[bottom], tops=[desc.top],
                            params={"leading_dim": width, "time_step": 0}, raw=source))
    return embeddings, layers


def collection_tops(desc: Description) -> list[str]:
    return [desc.top] if desc.layout == "batch_major" else [lk.top for lk in desc.lookups]


# --------------------------------------------------------------------------- dump side
def check_with_dump(desc: Description):
    """Cross-check the description with the dump's meta_data (before the graph is read,
    so that a wrong ev_size is named as such, not as a shape error); returns the meta."""
    meta = read_meta_data(desc.dump_dir / "meta_data")
    check_complete(meta)
    mp = meta.path
    if meta.num_tables != len(desc.tables):
        raise _fail(f"{len(desc.tables)} tables, but {mp} holds {meta.num_tables}",
                    desc.path, "tables")
    if desc.key_type is not None and desc.key_type != meta.key_type:
        raise _fail(f"key_type {desc.key_type}, but {mp} says {meta.key_type} (byte offset 4)",
                    desc.path, "key_type")
    for i, spec in enumerate(desc.tables):
        j = spec.id
        where = f"tables[{i}]"
        n = meta.num_tables
        if meta.ev_sizes[j] != spec.ev_size:
            raise _fail(f"table {spec.name!r} (id {j}) has ev_size {spec.ev_size}, but {mp} "
                        f"gives {meta.ev_sizes[j]} (byte offset {20 + 12 * n + 4 * j})",
                        desc.path, f"{where}.ev_size")
        if spec.static and meta.key_counts[j] != spec.vocab:
            raise _fail(f"static table {spec.name!r} (id {j}) has vocab {spec.vocab}, so "
                        f"HugeCTR dumps {spec.vocab} rows, but {mp} counts "
                        f"{meta.key_counts[j]} keys (byte offset {20 + 4 * n + 8 * j})"
                        f"; a dynamic table has vocab -1", desc.path, f"{where}.vocab")
    return meta


def load_collection_tables(desc: Description, embeddings: list[Embedding], meta=None) -> None:
    """Read the dump (cross-checked with the description) and give each lookup its shared,
    memory-mapped table."""
    meta = meta or check_with_dump(desc)
    key_bytes = 4 if meta.key_type == "uint32" else 8
    tables = {}
    for spec in desc.tables:
        table = read_dump_table(desc.dump_dir, spec.id, meta)
        if spec.static:
            check_static_keys(table, spec.vocab, spec.name, key_bytes)
        tables[spec.name] = as_int64_table(table)
    for emb in embeddings:
        emb.table = tables[emb.table_name]


def description_document(path) -> dict:
    """The description's JSON document with ``key_type`` taken from the dump (for a backend
    that writes the collection back; the loader has checked both already)."""
    desc = load_description(path)
    doc = json.loads(read_text(path, "embedding collection description"))
    doc["key_type"] = read_meta_data(desc.dump_dir / "meta_data").key_type
    return doc


__all__ = ["description_document", "Description", "LookupSpec", "TableSpec",
           "load_description", "parse_description",
           "collection_to_ir", "collection_tops", "check_with_dump", "load_collection_tables"]

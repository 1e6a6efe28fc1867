"""The drop-in API: ``convert()`` with the signature of NVIDIA's hugectr2onnx."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import OutputError, UsageError
from .hugectr.sparse import check_keys
from .ir import Graph
from .loader import as_list, load_model
from .onnx_backend.embedding import EmbeddingOptions, check_table_order, uses_slot_order
from .onnx_backend.lookup import DuplicateKeyError, resolve_strategy
from .onnx_backend.metadata import file_sha256, model_metadata, set_metadata, value_infos
from .onnx_backend.export import (AUTO_THRESHOLD, EXTERNAL_MIN_BYTES, build_model,
                                  check_external_mode, save_model, stage_tables)
from .options import ConvertOptions

__all__ = ["convert", "load_model", "ConversionReport", "ConvertOptions"]


@dataclass
class ConversionReport:
    onnx_path: str
    files: list[str]
    layers: int
    layer_types: dict[str, int]
    tables: list[dict] = field(default_factory=list)
    output_bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)  # name, dtype, shape
    outputs: list[dict] = field(default_factory=list)

    @property
    def keys(self) -> int:
        return sum(t["keys"] for t in self.tables)

    def summary(self) -> str:
        kinds = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in sorted(self.layer_types.items()))
        lines = [f"converted {self.layers} layers ({kinds})"]
        for t in self.tables:
            lines.append(f"  table {t['name']}: {t['keys']} keys x {t['vec_size']}, "
                         f"lookup {t['strategy']}")
        for kind, values in (("input", self.inputs), ("output", self.outputs)):
            lines += [f"  {kind} {v['name']}: {v['dtype']} [{', '.join(map(str, v['shape']))}]"
                      for v in values]
        lines.append(f"wrote {', '.join(self.files)} ({_size(self.output_bytes)}) "
                     f"in {self.seconds:.2f} s")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _check_options(num_gpus, padding_key) -> None:
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, int)
                                 or not 1 <= num_gpus <= 1 << 16):
        raise UsageError(f"num_gpus must be an integer from 1 to 65536, found {num_gpus!r}")
    if padding_key is not None and (isinstance(padding_key, bool)
                                    or not isinstance(padding_key, (int, np.integer))
                                    or not -(1 << 63) <= int(padding_key) < 1 << 63):
        raise UsageError(f"padding_key must be an int64 value or None, found {padding_key!r}")


def _check_not_an_input(output, inputs) -> None:
    """Refuse to overwrite one of the model's own files."""
    try:
        out = Path(output).resolve()
        same = [p for p in inputs if p and str(p) and Path(p).exists() and Path(p).resolve() in
                (out, out.with_name(out.name + ".data"))]
    except (OSError, TypeError, ValueError):
        return
    if same:
        raise OutputError("output path would overwrite an input file", file=str(same[0]))


def _embedding_options(graph: Graph, convert_embedding: bool, lookup: str, padding_key,
                       num_gpus, trust_hash: bool, table_order: str,
                       lookups: list[str]) -> list[EmbeddingOptions]:
    """Per-table options after the key checks. With ``trust_hash``, tables the hash lookup
    indexes skip the separate duplicate check (a sort of all keys): the hash build finds a
    repeated key itself and raises DuplicateKeyError, and the caller then checks fully.
    ``lookups``: each table's strategy with "auto" resolved (one scan of its keys), which
    GPU groups do not use: they resolve "auto" on their own subsets of keys."""
    opts = []
    for k, emb in enumerate(graph.embeddings if convert_embedding else []):
        resolved = lookups[k]
        if trust_hash and resolved == "hash":
            gpus = 1
        else:
            gpus = check_keys(emb.table, emb, num_gpus)
        opts.append(EmbeddingOptions(lookup=resolved if gpus == 1 else lookup,
                                     padding_key=padding_key, num_gpus=gpus,
                                     table_order=table_order))
    return opts


def _stage_tables(graph: Graph, path, external_data: str, threshold: int, progress,
                  lookups: list[str], table_order: str):
    """Start copying the tables into the data file now when they will go there anyway, so
    the copy overlaps the key checks and index builds (onnx_backend/staging.py). Tables
    stored in slot order wait for their index."""
    shared = {}  # embedding-collection lookups share tables: stage each once
    for emb, how in zip(graph.embeddings, lookups):
        if emb.table is not None and emb.table.vectors.nbytes >= EXTERNAL_MIN_BYTES:
            shared.setdefault(id(emb.table), (emb.table, how))
    big = list(shared.values())
    total = sum(int(t.vectors.nbytes) for t, _ in big)
    tables = [t.vectors for t, how in big
              if not uses_slot_order(t.keys, t.vectors, how, table_order)]
    if tables and (external_data == "always" or (external_data == "auto" and total > threshold)):
        return stage_tables(path, tables, progress=progress)
    return None


def convert(onnx_model_path, graph_config, dense_model, convert_embedding=False,
            sparse_models=None, ntp_file=None, graph_name="hugectr", *,
            options: ConvertOptions | None = None, **kwargs) -> ConversionReport:
    """Convert a HugeCTR model to ONNX (arguments as in NVIDIA's hugectr2onnx).

    Keyword-only extras come as ``options`` (a ConvertOptions) and/or as keywords of the
    same names (``opset``, ``key_type``, ``padding_key``, ``lookup``, ``external_data``,
    ``external_threshold``, ``projection_dims``, ``num_gpus``, ``strict_finite``,
    ``progress``, ``table_order``): see ConvertOptions.
    """
    o = ConvertOptions.from_kwargs(options, **kwargs)
    start = time.perf_counter()
    notes: list[str] = []
    if o.embedding_collection:
        convert_embedding = True  # the collection's tables come from its dump
    elif convert_embedding and sparse_models is None:
        raise UsageError("convert_embedding=True needs sparse_models")
    _check_options(o.num_gpus, o.padding_key)
    check_external_mode(o.external_data)
    check_table_order(o.table_order)
    _check_not_an_input(onnx_model_path, [graph_config, dense_model, ntp_file,
                                          o.embedding_collection, *(as_list(sparse_models))])
    graph = load_model(graph_config, dense_model, sparse_models if convert_embedding else None,
                       ntp_file, key_type=o.key_type, projection_dims=o.projection_dims,
                       strict_finite=o.strict_finite, warn=notes.append,
                       embedding_collection=o.embedding_collection)
    if convert_embedding and any(emb.table is None for emb in graph.embeddings):
        raise UsageError("the graph's sparse embeddings need sparse_models besides the "
                         "embedding collection")
    threshold = AUTO_THRESHOLD if o.external_threshold is None else o.external_threshold
    lookups = ([o.lookup if emb.table is None else resolve_strategy(emb.table.keys, o.lookup)
                for emb in graph.embeddings] if convert_embedding else [])
    staged = (_stage_tables(graph, onnx_model_path, o.external_data, threshold, o.progress,
                            lookups, o.table_order) if convert_embedding else None)
    build = dict(convert_embedding=convert_embedding, opset=o.opset, graph_name=graph_name)
    try:
        try:
            result = build_model(graph, **build, emb_opts=_embedding_options(
                graph, convert_embedding, o.lookup, o.padding_key, o.num_gpus, trust_hash=True,
                table_order=o.table_order, lookups=lookups))
        except DuplicateKeyError:  # the full key checks name the rows, or group by GPU
            result = build_model(graph, **build, emb_opts=_embedding_options(
                graph, convert_embedding, o.lookup, o.padding_key, o.num_gpus, trust_hash=False,
                table_order=o.table_order, lookups=lookups))
        set_metadata(result.skeleton, model_metadata(
            graph, convert_embedding=convert_embedding, key_type=o.key_type,
            padding_key=o.padding_key, slot_size_array=o.slot_size_array,
            tables=result.embeddings if convert_embedding else None,
            graph_sha256=file_sha256(graph_config)))
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    # from here save_model owns the staged file: it removes it on failure
    files = save_model(result, onnx_model_path, external_data=o.external_data,
                       progress=o.progress, threshold=threshold, staged=staged)
    counts: dict[str, int] = {}
    for layer in graph.layers:
        counts[layer.type] = counts.get(layer.type, 0) + 1
    tables = [dict(name=f"{emb.top} (table {emb.table_name})" if emb.table_name else emb.top,
                   keys=info["keys"], vec_size=emb.vec_size,
                   strategy=info["strategy"]) for emb, info in zip(graph.embeddings, result.embeddings)]
    return ConversionReport(onnx_path=str(onnx_model_path), files=[str(f) for f in files],
                            layers=len(graph.layers), layer_types=counts, tables=tables,
                            output_bytes=sum(Path(f).stat().st_size for f in files),
                            seconds=time.perf_counter() - start, warnings=notes,
                            inputs=value_infos(result.skeleton.graph.input),
                            outputs=value_infos(result.skeleton.graph.output))

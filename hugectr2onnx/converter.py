"""The drop-in API: ``convert()`` with the signature of NVIDIA's hugectr2onnx."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import NonFiniteWeightError, OutputError, UsageError
from .hugectr.dense import load_dense
from .hugectr.graph_json import load_graph
from .hugectr.ntp import load_ntp
from .hugectr.sparse import check_keys, count_nonfinite, load_table
from .ir import Graph
from .onnx_backend.embedding import EmbeddingOptions, check_table_order, uses_slot_order
from .onnx_backend.emitter import DEFAULT_OPSET
from .onnx_backend.lookup import DuplicateKeyError, resolve_strategy
from .onnx_backend.export import (AUTO_THRESHOLD, EXTERNAL_MIN_BYTES, build_model,
                                  check_external_mode, save_model, stage_tables)


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

    @property
    def keys(self) -> int:
        return sum(t["keys"] for t in self.tables)

    def summary(self) -> str:
        kinds = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in sorted(self.layer_types.items()))
        lines = [f"converted {self.layers} layers ({kinds})"]
        for t in self.tables:
            lines.append(f"  table {t['name']}: {t['keys']} keys x {t['vec_size']}, "
                         f"lookup {t['strategy']}")
        lines.append(f"wrote {', '.join(self.files)} ({_size(self.output_bytes)}) "
                     f"in {self.seconds:.2f} s")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def load_model(graph_config, dense_model, sparse_models=None, ntp_file=None, *,
               key_type: str = "I64", projection_dims=None, strict_finite: bool = False,
               warn=None) -> Graph:
    """Read all HugeCTR artifacts into the IR (tables stay memory-mapped)."""
    graph = load_graph(graph_config)
    if projection_dims is not None:
        _apply_projection_dims(graph, projection_dims)
    load_dense(graph, dense_model)
    load_ntp(graph, ntp_file)
    if sparse_models is not None:
        if isinstance(sparse_models, (str, Path)):
            sparse_models = [sparse_models]
        if len(sparse_models) != len(graph.embeddings):
            raise UsageError(f"{len(sparse_models)} sparse models given, the graph has "
                             f"{len(graph.embeddings)} embeddings")
        for emb, path in zip(graph.embeddings, sparse_models):
            emb.table = load_table(path, emb, key_type)
    _check_finite(graph, strict_finite, warn, str(dense_model))
    return graph


def _as_list(paths) -> list:
    if paths is None:
        return []
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


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


def _apply_projection_dims(graph: Graph, dims) -> None:
    crosses = [l for l in sorted(graph.layers, key=lambda l: l.index) if l.type == "MultiCross"]
    dims = [dims] * len(crosses) if isinstance(dims, int) else list(dims)
    if len(dims) != len(crosses):
        raise UsageError(f"{len(dims)} projection_dims given for {len(crosses)} MultiCross layers")
    for layer, p in zip(crosses, dims):
        layer.params["projection_dim"] = int(p)


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
    big = [(emb.table, how) for emb, how in zip(graph.embeddings, lookups)
           if emb.table is not None and emb.table.vectors.nbytes >= EXTERNAL_MIN_BYTES]
    total = sum(int(t.vectors.nbytes) for t, _ in big)
    tables = [t.vectors for t, how in big
              if not uses_slot_order(t.keys, t.vectors, how, table_order)]
    if tables and (external_data == "always" or (external_data == "auto" and total > threshold)):
        return stage_tables(path, tables, progress=progress)
    return None


def _check_finite(graph: Graph, strict: bool, warn, dense_file: str) -> None:
    for layer in graph.layers:
        for name, w in layer.weights.items():
            if not np.isfinite(w).all():
                bad = int(np.size(w) - np.isfinite(w).sum())
                msg = f"{layer.label} weight {name} has {bad} NaN/Inf values"
                if strict:
                    raise NonFiniteWeightError(msg, file=dense_file)
                (warn or warnings.warn)(msg)
    for emb in graph.embeddings:
        bad = count_nonfinite(emb.table.vectors) if emb.table is not None else 0
        if bad:
            msg = f"embedding #{emb.index} ({emb.top}) has {bad} NaN/Inf values"
            if strict:
                raise NonFiniteWeightError(msg, file=emb.table.source)
            (warn or warnings.warn)(msg)


def convert(onnx_model_path, graph_config, dense_model, convert_embedding=False,
            sparse_models=None, ntp_file=None, graph_name="hugectr", *,
            opset: int = DEFAULT_OPSET, key_type: str = "I64", padding_key: int | None = -1,
            lookup: str = "auto", external_data: str = "auto", projection_dims=None,
            num_gpus: int | None = None, strict_finite: bool = False,
            external_threshold: int | None = None, progress: bool | None = None,
            table_order: str = "auto") -> ConversionReport:
    """Convert a HugeCTR model to ONNX (arguments as in NVIDIA's hugectr2onnx).

    Keyword-only extras: ``opset`` (13-21), ``key_type`` of legacy single-file tables
    ("I64"/"I32"), ``padding_key`` marking absent entries of multi-hot slots (None: none),
    ``lookup`` strategy, ``external_data`` ("auto"/"always"/"never"), ``projection_dims`` of
    DCN-v2 MultiCross layers, ``num_gpus`` of Localized training runs, ``strict_finite``,
    ``external_threshold`` (bytes above which "auto" writes external data), ``progress``
    (bars on stderr; None: when it is a terminal) and ``table_order`` of hashed tables
    ("slot": in the index's slot order, one random read less per lookup; "file": streamed
    as stored; "auto": slot order up to 4 GiB or a quarter of the RAM).
    """
    start = time.perf_counter()
    notes: list[str] = []
    if convert_embedding and sparse_models is None:
        raise UsageError("convert_embedding=True needs sparse_models")
    _check_options(num_gpus, padding_key)
    check_external_mode(external_data)
    check_table_order(table_order)
    _check_not_an_input(onnx_model_path, [graph_config, dense_model, ntp_file,
                                          *(_as_list(sparse_models))])
    graph = load_model(graph_config, dense_model, sparse_models if convert_embedding else None,
                       ntp_file, key_type=key_type, projection_dims=projection_dims,
                       strict_finite=strict_finite, warn=notes.append)
    threshold = AUTO_THRESHOLD if external_threshold is None else external_threshold
    lookups = ([lookup if emb.table is None else resolve_strategy(emb.table.keys, lookup)
                for emb in graph.embeddings] if convert_embedding else [])
    staged = (_stage_tables(graph, onnx_model_path, external_data, threshold, progress,
                            lookups, table_order) if convert_embedding else None)
    build = dict(convert_embedding=convert_embedding, opset=opset, graph_name=graph_name)
    try:
        try:
            result = build_model(graph, **build, emb_opts=_embedding_options(
                graph, convert_embedding, lookup, padding_key, num_gpus, trust_hash=True,
                table_order=table_order, lookups=lookups))
        except DuplicateKeyError:  # the full key checks name the rows, or group by GPU
            result = build_model(graph, **build, emb_opts=_embedding_options(
                graph, convert_embedding, lookup, padding_key, num_gpus, trust_hash=False,
                table_order=table_order, lookups=lookups))
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    # from here save_model owns the staged file: it removes it on failure
    files = save_model(result, onnx_model_path, external_data=external_data,
                       progress=progress, threshold=threshold, staged=staged)
    counts: dict[str, int] = {}
    for layer in graph.layers:
        counts[layer.type] = counts.get(layer.type, 0) + 1
    tables = [dict(name=emb.top, keys=info["keys"], vec_size=emb.vec_size,
                   strategy=info["strategy"]) for emb, info in zip(graph.embeddings, result.embeddings)]
    return ConversionReport(onnx_path=str(onnx_model_path), files=[str(f) for f in files],
                            layers=len(graph.layers), layer_types=counts, tables=tables,
                            output_bytes=sum(Path(f).stat().st_size for f in files),
                            seconds=time.perf_counter() - start, warnings=notes)

"""Bulk-load HugeCTR tables into Redis in HPS's layout: pipelined, bounded, resumable.

Rows go in chunks (``chunk_bytes`` of payload); each chunk is split by partition into one HSET
per partition hash, and a chunk's HSETs travel as one pipeline per node. After each chunk a
progress record ``hugectr2onnx.load{<tag>}`` notes the rows done, so an interrupted load resumes
there; HSET overwrites, so rows sent twice are stored once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ServiceError, UsageError
from ..hugectr.graph_json import load_graph
from ..hugectr.sparse import load_table
from ..loader import as_list
from ..progress import progress_bar
from .layout import (DEFAULT_PARTITIONS, key_fields, partition_key, partition_of,
                     partition_order, tag_name)
from .resp import encode_command, encode_grouped, frame_width, pack
from .store import RedisOptions, RedisStore

CHUNK_BYTES = 32 << 20  # larger first HSETs presize the hashes: see docs/redis.md


@dataclass
class TableLoad:
    name: str
    tag: str
    rows: int
    vec_size: int
    rows_sent: int = 0
    stored: int = 0  # fields in the table's partitions after the load
    skipped: bool = False  # already complete from an earlier run
    resumed_at: int = 0
    seconds: float = 0.0

    @property
    def payload_bytes(self) -> int:
        return self.rows_sent * (8 + 4 * self.vec_size)


@dataclass
class LoadReport:
    url: str
    model: str
    partitions: int
    tables: list[TableLoad] = field(default_factory=list)

    @property
    def payload_bytes(self) -> int:
        return sum(t.payload_bytes for t in self.tables)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.tables)

    @property
    def mb_per_s(self) -> float:
        return self.payload_bytes / 1e6 / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lines = [f"loaded model {self.model!r} into {self.url} ({self.partitions} partitions per "
                 f"table): {self.payload_bytes / 1e6:.1f} MB in {self.seconds:.2f} s, "
                 f"{self.mb_per_s:.1f} MB/s"]
        for t in self.tables:
            state = ("already complete, skipped" if t.skipped else
                     f"resumed at row {t.resumed_at}" if t.resumed_at else "loaded")
            dup = (f" ({t.rows - t.stored} keys repeat in the file: the later row wins, as in "
                   f"HPS)" if t.stored < t.rows else "")
            lines.append(f"  {t.tag}: {t.rows} keys x {t.vec_size} floats, {state}; "
                         f"{t.stored} stored{dup}")
        return "\n".join(lines)


def table_names(graph, tables) -> list[str]:
    """``tables`` (HPS's embedding_table_names) or the embedding layers' top names."""
    names = [e.top for e in graph.embeddings] if tables is None else list(tables)
    if len(names) != len(graph.embeddings):
        raise UsageError(f"{len(names)} table names given, the graph has "
                         f"{len(graph.embeddings)} embeddings")
    return names


def load_tables(url: str, model: str, graph_config, sparse_models, *,
                partitions: int = DEFAULT_PARTITIONS, tables=None, key_bytes: int = 8,
                key_type: str = "I64", options: RedisOptions | None = None,
                chunk_bytes: int = CHUNK_BYTES, replace: bool = False,
                progress: bool | None = None, stop_after_chunks: int | None = None) -> LoadReport:
    """Write every embedding table of the model into Redis in HPS's layout.

    ``replace`` deletes what the tables' partitions hold first (a new snapshot, or data this
    tool did not write). ``stop_after_chunks`` interrupts the load (tests of resumption)."""
    if partitions < 1:
        raise UsageError(f"--partitions must be at least 1, found {partitions}")
    graph = load_graph(graph_config)
    sparse_models = as_list(sparse_models)
    if len(sparse_models) != len(graph.embeddings):
        raise UsageError(f"{len(sparse_models)} sparse models given, the graph has "
                         f"{len(graph.embeddings)} embeddings")
    names = table_names(graph, tables)
    store = RedisStore(url, options)
    report = LoadReport(store.shown, model, partitions)
    budget = [stop_after_chunks]
    try:
        for emb, path, name in zip(graph.embeddings, sparse_models, names):
            table = load_table(path, emb, key_type)
            tag = tag_name(model, name)
            report.tables.append(_load_one(store, tag, name, table, emb.vec_size, partitions,
                                           key_bytes, chunk_bytes, replace, progress, budget))
    finally:
        store.close()
    return report


def _fingerprint(table, partitions: int, key_bytes: int) -> str:
    h = hashlib.sha256()
    keys, vecs = table.keys, table.vectors
    h.update(np.asarray([keys.shape[0], vecs.shape[1], partitions, key_bytes]).tobytes())
    for part in (keys[:4096], keys[-4096:], vecs[:256], vecs[-256:]):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:32]


def _stored(store: RedisStore, tag: str, partitions: int, name: str) -> int:
    replies = store.exchange([(k, encode_command(b"HLEN", k)) for k in
                              (partition_key(tag, p) for p in range(partitions))], name)
    return int(sum(replies))


def _load_one(store, tag, name, table, vec_size, partitions, key_bytes, chunk_bytes, replace,
              progress, budget) -> TableLoad:
    rows = table.num_keys
    result = TableLoad(name, tag, rows, vec_size)
    marker = f"hugectr2onnx.load{{{tag}}}".encode()
    fp = _fingerprint(table, partitions, key_bytes)
    state = store.command("HGETALL", marker, table=name, key=marker) or {}
    state = {k.decode(): v.decode() for k, v in state.items()}
    start = 0
    if replace:
        _delete(store, tag, partitions, name, marker)
    elif state.get("fingerprint") == fp:
        start = int(state.get("rows_done", 0))
        if state.get("complete") == "1":
            result.skipped = True
            result.stored = _stored(store, tag, partitions, name)
            return result
    elif state:
        raise UsageError(f"{tag} holds another snapshot (or another partition count); pass "
                         f"--replace to reload it", file=store.shown, where=f"table {name}")
    elif _stored(store, tag, partitions, name) or _has_partition(store, tag, partitions, name):
        raise UsageError(f"{tag} already holds data this tool did not write (an HPS "
                         f"deployment?); pass --replace to overwrite it", file=store.shown,
                         where=f"table {name}")
    result.resumed_at = start
    store.command("HSET", marker, "fingerprint", fp, "partitions", partitions, "rows",
                  rows, "complete", 0, "rows_done", start, table=name, key=marker)
    row_bytes = key_bytes + 4 * vec_size
    step = max(1, chunk_bytes // row_bytes)
    buffers = _Buffers(min(step, rows - start), key_bytes, vec_size)
    t0 = time.perf_counter()
    with progress_bar((rows - start) * row_bytes, f"redis {name}", progress) as bar:
        # chunk i+1 is encoded while Redis executes chunk i; the progress record of a chunk
        # whose replies came back travels in the next chunk's pipeline (no round trip of its own)
        inflight = None  # (commands, pending, end row)
        done = start
        for a in list(range(start, rows, step)) + [None]:
            nxt = None
            if a is not None:
                if budget[0] is not None:
                    if budget[0] <= 0:
                        if inflight is not None:
                            store.command("HSET", marker, "rows_done",
                                          _finish(store, inflight, name), table=name, key=marker)
                        result.seconds = time.perf_counter() - t0
                        raise ServiceError("load interrupted (stop_after_chunks)",
                                           file=store.shown, where=f"table {name}")
                    budget[0] -= 1
                b = min(rows, a + step)
                nxt = _chunk_commands(tag, table.keys[a:b], table.vectors[a:b], partitions,
                                      key_bytes, buffers)
            if inflight is not None:
                done = _finish(store, inflight, name)
                bar.update((done - start - result.rows_sent) * row_bytes)
                result.rows_sent = done - start
            if nxt is not None:
                if done > start:
                    nxt.insert(0, (marker, pack(b"HSET", marker, b"rows_done", done)))
                inflight = (nxt, _submit(store, nxt, name), b)
    result.seconds = time.perf_counter() - t0
    store.command("HSET", marker, "rows_done", rows, "complete", 1, table=name, key=marker)
    result.stored = _stored(store, tag, partitions, name)
    return result


def _submit(store, commands, name):
    import redis

    try:
        return store.submit(commands)
    except (redis.RedisError, OSError):
        return None  # _finish sends it again, within the retry budget


def _finish(store, inflight, name) -> int:
    """Wait for a chunk's replies (resending it on failure: HSET is idempotent)."""
    if inflight is None:
        return 0
    import redis

    commands, pending, end = inflight
    try:
        if pending is not None:
            pending.wait()
            return end
    except (redis.RedisError, OSError):
        pass
    store.exchange(commands, name)
    return end


class _Buffers:
    """Encoding buffers reused for every chunk: one scratch, and two outputs taken in turn
    (a chunk's frames stay intact until its replies are read: it may be sent again)."""

    def __init__(self, rows: int, key_bytes: int, vec_size: int):
        size = rows * frame_width(key_bytes, 4 * vec_size)
        self.scratch = np.empty(size, np.uint8)
        self.outs = [np.empty(size, np.uint8), np.empty(size, np.uint8)]
        self.turn = 0

    def next_out(self) -> np.ndarray:
        self.turn ^= 1
        return self.outs[self.turn]


def _chunk_commands(tag, keys, vectors, partitions, key_bytes, buffers=None):
    """One HSET per partition hash the chunk's rows fall into."""
    keys = np.asarray(keys)
    part = partition_of(keys, partitions)
    order = partition_order(part, partitions)
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    values = np.ascontiguousarray(vectors, dtype="<f4").view(np.uint8).reshape(len(keys), -1)
    return encode_grouped(b"HSET", [partition_key(tag, p) for p in range(partitions)], bounds,
                          order, key_fields(keys, key_bytes), values,
                          scratch=None if buffers is None else buffers.scratch,
                          out=None if buffers is None else buffers.next_out())


def _has_partition(store, tag, partitions, name) -> bool:
    # a table written with more partitions than asked would be read wrongly: look one past
    return bool(store.command("EXISTS", partition_key(tag, partitions), table=name,
                              key=partition_key(tag, partitions)))


def _delete(store, tag, partitions, name, marker) -> None:
    names = [partition_key(tag, p, s) for p in range(partitions) for s in "vt"]
    store.exchange([(k, encode_command(b"UNLINK", k)) for k in names], name)
    store.command("DEL", marker, table=name, key=marker)

"""Embedding lookups against tables in Redis (HPS's layout), pooled as the in-ONNX lookup pools.

Per request: the distinct keys of each table, minus those in the cache, become one HMGET per
partition hash (split at ``max_fields``); all tables' HMGETs go out as one pipeline per node.
Pooling follows HUGECTR_LAYERS §2.2 as reference.embedding_reference does: padding keys are
skipped, unseen keys add zeros, ``mean`` divides by the number of non-padding keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ServiceError, UsageError
from ..ir import Embedding
from .cache import VectorCache
from .layout import (DEFAULT_PARTITIONS, key_fields, partition_key, partition_of,
                     partition_order, tag_name)
from .resp import encode_command, pack
from .store import RedisStore

MAX_FIELDS = 64 * 1024  # HPS's max_batch_size: fields per command


@dataclass
class TableStats:
    keys: int = 0  # non-padding keys looked up
    distinct: int = 0
    fetched: int = 0  # sent to Redis (cache misses)
    found: int = 0


class RedisTables:
    """The tables of one model in one Redis deployment."""

    def __init__(self, store: RedisStore, model: str, embeddings: list[Embedding], *,
                 tables=None, partitions: int = DEFAULT_PARTITIONS, key_bytes: int = 8,
                 padding_key: int | None = -1, cache_keys: int = 0,
                 max_fields: int = MAX_FIELDS, check: bool = True):
        names = [e.top for e in embeddings] if tables is None else list(tables)
        if len(names) != len(embeddings):
            raise UsageError(f"{len(names)} table names given, the graph has "
                             f"{len(embeddings)} embeddings")
        if partitions < 1:
            raise UsageError(f"--partitions must be at least 1, found {partitions}")
        self.store, self.model = store, model
        self.embeddings, self.names = list(embeddings), names
        self.tags = [tag_name(model, n) for n in names]
        self.partitions, self.key_bytes = partitions, key_bytes
        self.padding_key, self.max_fields = padding_key, max_fields
        self.caches = [VectorCache(cache_keys, e.vec_size) if cache_keys else None
                       for e in embeddings]
        self.stats = [TableStats() for _ in embeddings]
        if check:
            self.check()

    def check(self) -> None:
        """Each table exists with this partition count and holds vectors of its width."""
        for emb, name, tag in zip(self.embeddings, self.names, self.tags):
            keys = [partition_key(tag, p) for p in range(self.partitions + 1)]
            sizes = self.store.exchange([(k, encode_command(b"HLEN", k)) for k in keys], name)
            if sizes[-1]:
                raise UsageError(f"{tag} has a partition p{self.partitions}: it was written "
                                 f"with more than {self.partitions} partitions (--partitions)",
                                 file=self.store.shown, where=f"table {name}")
            if not any(sizes):
                raise UsageError(f"no table {tag} in Redis (check the model name, --tables and "
                                 f"--partitions; tables: `hugectr2onnx redis load`)",
                                 file=self.store.shown, where=f"table {name}")
            first = keys[next(i for i, n in enumerate(sizes) if n)]
            (sample,) = self.store.exchange([(first, pack(b"HRANDFIELD", first, 1,
                                                          b"WITHVALUES"))], name)
            field, value = sample[0], sample[1]
            if len(field) != self.key_bytes or len(value) != 4 * emb.vec_size:
                raise UsageError(f"{tag} holds {len(field)}-byte keys and {len(value)}-byte "
                                 f"values; the graph's embedding_vec_size {emb.vec_size} needs "
                                 f"{4 * emb.vec_size}-byte values and the key width is "
                                 f"{self.key_bytes}", file=self.store.shown,
                                 where=f"table {name}")

    # ------------------------------------------------------------------ lookups
    def lookup(self, keys_per_table: list[np.ndarray]) -> list[np.ndarray]:
        """Pooled [B, slots, vec] float32 per table, from int64 keys [B, slots, nnz]."""
        plans, commands = [], []
        for t, keys in enumerate(keys_per_table):
            plan = self._plan(t, np.asarray(keys, dtype=np.int64))
            plan["first"] = len(commands)
            commands += plan.pop("commands")
            plans.append(plan)
        replies = self.store.exchange(commands, ", ".join(self.names)) if commands else []
        return [self._pool(t, plan, replies) for t, plan in enumerate(plans)]

    def _plan(self, t: int, keys: np.ndarray) -> dict:
        present = (np.ones(keys.shape, dtype=bool) if self.padding_key is None
                   else keys != self.padding_key)
        uniq, inv = np.unique(keys[present], return_inverse=True)
        vec = self.embeddings[t].vec_size
        vectors = np.zeros((uniq.size, vec), dtype=np.float32)
        found = np.zeros(uniq.size, dtype=bool)
        cache = self.caches[t]
        if cache is not None and uniq.size:
            cached, hit = cache.get(uniq)
            vectors[hit] = cached[hit]
            found |= hit
            wanted = np.flatnonzero(~hit)
        else:
            wanted = np.arange(uniq.size)
        if self.key_bytes == 4:  # a key a 4-byte table cannot hold is unseen
            wanted = wanted[(uniq[wanted] >= 0) & (uniq[wanted] <= 0xFFFFFFFF)]
        st = self.stats[t]
        st.keys += int(present.sum())
        st.distinct += int(uniq.size)
        st.fetched += int(wanted.size)
        part = partition_of(uniq[wanted], self.partitions)
        order = partition_order(part, self.partitions)
        wanted, part = wanted[order], part[order]
        bounds = np.searchsorted(part, np.arange(self.partitions + 1))
        fields = key_fields(uniq[wanted], self.key_bytes)
        commands, slices = [], []
        for p in range(self.partitions):
            name = partition_key(self.tags[t], p)
            for lo in range(bounds[p], bounds[p + 1], self.max_fields):
                hi = min(lo + self.max_fields, bounds[p + 1])
                commands.append((name, encode_command(b"HMGET", name, fields[lo:hi])))
                slices.append((lo, hi))
        return {"keys": keys, "present": present, "inv": inv, "uniq": uniq, "vectors": vectors,
                "found": found, "wanted": wanted, "slices": slices, "commands": commands}

    def _pool(self, t: int, plan: dict, replies: list) -> np.ndarray:
        emb, name = self.embeddings[t], self.names[t]
        vectors, found, wanted = plan["vectors"], plan["found"], plan["wanted"]
        row = 4 * emb.vec_size
        for i, (lo, hi) in enumerate(plan["slices"]):
            reply = replies[plan["first"] + i]
            if not isinstance(reply, list) or len(reply) != hi - lo:
                raise ServiceError(f"HMGET answered {type(reply).__name__} for {hi - lo} "
                                   f"fields", file=self.store.shown, where=f"table {name}")
            values = np.array(reply, dtype=object)
            hit = np.not_equal(values, None)
            data = b"".join(values[hit].tolist())
            if len(data) != int(hit.sum()) * row:
                raise ServiceError(f"values of {len(data) // max(1, int(hit.sum()))} bytes, "
                                   f"expected {row} (embedding_vec_size {emb.vec_size})",
                                   file=self.store.shown, where=f"table {name}")
            rows = wanted[lo:hi][hit]
            vectors[rows] = np.frombuffer(data, dtype="<f4").reshape(-1, emb.vec_size)
            found[rows] = True
        fetched_found = wanted[found[wanted]]
        self.stats[t].found += int(found.sum())
        cache = self.caches[t]
        if cache is not None:
            cache.put(plan["uniq"][fetched_found], vectors[fetched_found])
        return pool(emb, plan["keys"].shape, plan["present"], plan["inv"], vectors, found)


def pool(emb: Embedding, shape, present: np.ndarray, inv: np.ndarray, vectors: np.ndarray,
         found: np.ndarray) -> np.ndarray:
    """Sum (or mean) over the nnz axis of the rows of the distinct keys ``inv`` points to."""
    if found.size == 0:  # nothing but padding: one zero row to point at
        vectors, found = np.zeros((1, emb.vec_size), dtype=np.float32), np.zeros(1, dtype=bool)
    idx = np.zeros(shape, dtype=np.int64)
    idx[present] = inv
    hit = present & found[idx]
    gathered = np.where(hit[..., None], vectors[idx], np.float32(0))
    total = gathered.sum(axis=2, dtype=np.float32)
    if emb.combiner == "mean":
        count = present.sum(axis=2, keepdims=True).astype(np.float32)
        total = np.where(count > 1, total / np.maximum(count, 1), total)
    return total.astype(np.float32)

"""An in-process cache of hot embedding vectors: set-associative with LRU within each set.

It plays the part of HPS's GPU embedding cache (also set-associative), on the CPU. Lookups and
inserts are whole-array numpy operations; memory is fixed at construction.
"""

from __future__ import annotations

import numpy as np

from .layout import rrxmrrxmsx_0


class VectorCache:
    def __init__(self, capacity: int, vec_size: int, ways: int = 8):
        self.ways = max(1, min(ways, capacity))
        self.sets = max(1, capacity // self.ways)
        shape = (self.sets, self.ways)
        self.tags = np.zeros(shape, dtype=np.int64)
        self.valid = np.zeros(shape, dtype=bool)
        self.stamp = np.zeros(shape, dtype=np.int64)  # last use; 0 = never
        self.vectors = np.zeros(shape + (vec_size,), dtype=np.float32)
        self.clock = 0
        self.hits = 0
        self.lookups = 0

    @property
    def capacity(self) -> int:
        return self.sets * self.ways

    def _set_of(self, keys: np.ndarray) -> np.ndarray:
        # high bits of HPS's mixer: independent of the partition, which uses it modulo P
        return ((rrxmrrxmsx_0(keys) >> np.uint64(32)) % np.uint64(self.sets)).astype(np.int64)

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vectors [n, vec], hit [n]) for distinct ``keys``; rows of misses are undefined."""
        self.clock += 1
        s = self._set_of(keys)
        match = (self.tags[s] == keys[:, None]) & self.valid[s]
        hit = match.any(axis=1)
        way = match.argmax(axis=1)
        self.stamp[s[hit], way[hit]] = self.clock
        self.hits += int(hit.sum())
        self.lookups += int(keys.size)
        return self.vectors[s, way], hit

    def put(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Insert distinct keys not in the cache, each set evicting its least recently used
        ways; beyond ``ways`` new keys for one set in one call, the rest are not cached."""
        if keys.size == 0:
            return
        s = self._set_of(keys)
        order = np.argsort(s.astype(np.uint16) if self.sets <= 65536 else s, kind="stable")
        ss = s[order]
        rank = np.arange(ss.size) - np.searchsorted(ss, ss, side="left")
        keep = rank < self.ways
        order, ss, rank = order[keep], ss[keep], rank[keep]
        lru = np.argsort(self.stamp[ss], axis=1, kind="stable")
        way = lru[np.arange(ss.size), rank]
        self.tags[ss, way] = keys[order]
        self.valid[ss, way] = True
        self.stamp[ss, way] = self.clock
        self.vectors[ss, way] = vectors[order]

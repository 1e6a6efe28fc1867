"""Key -> row lookups for embedding tables.

Every strategy maps int64 keys (any value) to 1-based row ids of the table (row 0 is the
all-zero row that missing keys read), offers a numpy mirror ``rows`` and emits ONNX with
``emit``. Builds are vectorized numpy; see docs/lookup.md for the design and measurements.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..errors import UsageError
from .external import Lanes

STRATEGIES = ("auto", "direct", "hash", "label_encoder")
DIRECT_MAX_SPREAD = 4  # direct array if the key range is at most this many times the key count
DIRECT_MIN_RANGE = 1 << 16  # ...or this small
DIRECT_HARD_LIMIT = 64  # an explicit "direct" refuses ranges above 64 x keys (and 2^24)

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
_CHUNK = 1 << 22  # keys per step of chunked builds
LANES = 2  # copies of each index array: ONNX Runtime gives each its own thread (measured)


class DuplicateKeyError(UsageError):
    """A key appears twice among the keys an index was asked to build over."""


class KeyIndex:
    name = ""

    def rows(self, keys: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def emit(self, g, keys: str, hint: str, per_sample: int | None = None) -> str:
        """Rows for ``keys`` (any shape). The work runs on a flat view: ONNX Runtime's
        broadcasting of a scalar against [B, S, 1] is ~10x slower than against [B*S].
        ``per_sample`` (keys per batch row, if static) enables the lane-split reads."""
        flat = g.reshape(keys, [-1])
        lanes = LANES if per_sample and per_sample % LANES == 0 else 1
        rows = self._emit_flat(g, flat, hint, lanes)
        return g.node("Reshape", [rows, g.node("Shape", [keys], hint=f"{hint}/shape")],
                      hint=f"{hint}/rows")

    def _emit_flat(self, g, keys: str, hint: str, lanes: int) -> str:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes of the index tensors written into the model."""
        raise NotImplementedError


def _index_array(g, name: str, array: np.ndarray) -> str:
    """An index array as ``LANES`` stacked copies, [LANES, N]; stored once however many
    lookups read it (tables shared by embedding-collection lookups)."""
    shared = getattr(g, "shared", None)
    if shared is None:
        return g.add_initializer(name, Lanes(array, LANES))
    if id(array) not in shared:  # the entry keeps the array alive, so its id stays unique
        shared[id(array)] = (array, g.add_initializer(name, Lanes(array, LANES)))
    return shared[id(array)][1]


def _read(g, data: str, idx: str, lanes: int, hint: str) -> str:
    """``array[idx]`` from ``_index_array`` data. ONNX Runtime's GatherElements runs one
    thread per row of its data: with ``lanes`` = LANES each copy serves a share of the
    flat indices (their count must divide evenly); with 1 the first copy serves all."""
    shaped = g.reshape(idx, [lanes, -1])
    return g.reshape(g.node("GatherElements", [data, shaped], axis=1, hint=hint), [-1])


def _default_rows(n: int, rows) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.int64) if rows is None else np.asarray(rows)


# --- direct ---------------------------------------------------------------------------------

class DirectIndex(KeyIndex):
    """A dense array over [min_key - 1, max_key + 1] whose end entries are 0: Clip, Sub, Gather.

    Clipping before subtracting keeps the arithmetic inside int64 for any key."""

    name = "direct"

    def __init__(self, keys: np.ndarray, rows=None):
        keys = np.asarray(keys, dtype=np.int64)
        lo, hi = int(keys.min()), int(keys.max())
        # a guard entry below/above the range, unless the range touches the int64 limits
        self.lo = lo - 1 if lo > I64_MIN else lo
        self.hi = hi + 1 if hi < I64_MAX else hi
        top = keys.size if rows is None else int(np.max(rows))
        self.table = np.zeros(self.hi - self.lo + 1, dtype=np.int32 if top < 2 ** 31 else np.int64)
        for c in range(0, keys.size, _CHUNK):  # chunks: no K-sized temporaries
            part = slice(c, c + _CHUNK)
            self.table[keys[part] - np.int64(self.lo)] = (
                np.arange(c + 1, min(c + _CHUNK, keys.size) + 1) if rows is None
                else np.asarray(rows[part]))

    def rows(self, keys):
        k = np.clip(np.asarray(keys, dtype=np.int64), self.lo, self.hi) - np.int64(self.lo)
        return self.table[k].astype(np.int64)

    def _emit_flat(self, g, keys, hint, lanes):
        table = _index_array(g, f"{hint}.key_rows", self.table)
        c = g.node("Clip", [keys, g.const(np.int64(self.lo)), g.const(np.int64(self.hi))],
                   hint=f"{hint}/clip")
        k = g.node("Sub", [c, g.const(np.int64(self.lo))], hint=f"{hint}/offset")
        found = _read(g, table, k, lanes, f"{hint}/row")  # GatherElements: cheaper than Gather
        if self.table.dtype == np.int64:
            return found
        return g.node("Cast", [found], to=TensorProto.INT64, hint=f"{hint}/rows")

    @property
    def nbytes(self):
        return self.table.nbytes * LANES


# --- hash -----------------------------------------------------------------------------------

HASH_LOAD = 0.9  # keys per slot of a level's slot arrays
HASH_BUCKET_KEYS = 4  # mean keys per bucket (rounded to a power-of-two bucket count)
HASH_ROUNDS = 4000  # placement attempts per bucket before it moves to the next level
HASH_LEVELS = 8
SMALL_LEVEL = 4096  # levels this small get a sparser table and more attempts (cheap there)
SMALL_ROUNDS = 2000
HASH_MAX_BUCKET = 48  # a larger bucket means a multiplier that clusters these keys: redraw
HASH_BUCKET_TRIES = 3
GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd


class _HashLevel:
    """One displacement level: h = key*a; bucket = top bits of h; the bucket's odd 32-bit
    multiplier m gives slot = fastrange(top 32 bits of h*m, M); slot_keys[slot] == key ->
    slot_rows[slot], or, when the table is stored in slot order (``base`` set), row
    base + slot + 1. All arithmetic is uint64 modulo 2^64, which ONNX Mul/BitShift on
    uint64 define, so nothing overflows."""

    def __init__(self, a: int, bits: int, mults, slot_keys, slot_rows, base: int | None = None):
        self.a, self.bits, self.mults = np.uint64(a), bits, mults
        self.slot_keys, self.slot_rows = slot_keys, slot_rows
        self.base = base

    @property
    def size(self) -> int:
        return self.slot_keys.size

    def slots(self, ku: np.ndarray) -> np.ndarray:
        h = ku * self.a
        b = h >> np.uint64(64 - self.bits)
        return _fastrange(h * self.mults[b].astype(np.uint64), self.size)

    def rows(self, ku, k):
        s = self.slots(ku).astype(np.int64)
        found = s + (self.base + 1) if self.base is not None else self.slot_rows[s]
        return np.where(self.slot_keys[s] == k, found, 0)

    def emit(self, g, ku: str, keys: str, hint: str, lanes: int) -> str:
        """On flat keys, with GatherElements: ONNX Runtime's Gather costs several times
        more per scalar element (measured, docs/lookup.md)."""
        i64, shift32 = TensorProto.INT64, g.const(np.uint64(32))
        mults = _index_array(g, f"{hint}.mults", self.mults)
        slot_keys = _index_array(g, f"{hint}.slot_keys", self.slot_keys)
        h = g.node("Mul", [ku, g.const(self.a)], hint=f"{hint}/h")
        b = g.node("BitShift", [h, g.const(np.uint64(64 - self.bits))], direction="RIGHT",
                   hint=f"{hint}/bucket")
        m32 = _read(g, mults, g.node("Cast", [b], to=i64, hint=f"{hint}/bi"), lanes,
                    f"{hint}/mult")
        m = g.node("Cast", [m32], to=TensorProto.UINT64, hint=f"{hint}/m")
        hm = g.node("BitShift", [g.node("Mul", [h, m], hint=f"{hint}/hm"), shift32],
                    direction="RIGHT", hint=f"{hint}/hm32")
        s = g.node("BitShift", [g.node("Mul", [hm, g.const(np.uint64(self.size))],
                                       hint=f"{hint}/scaled"), shift32],
                   direction="RIGHT", hint=f"{hint}/slot")
        si = g.node("Cast", [s], to=i64, hint=f"{hint}/si")
        stored = _read(g, slot_keys, si, lanes, f"{hint}/key")
        if self.base is not None:  # the table is in slot order
            row = g.node("Add", [si, g.const(np.int64(self.base + 1))], hint=f"{hint}/row")
        else:
            slot_rows = _index_array(g, f"{hint}.slot_rows", self.slot_rows)
            row = _read(g, slot_rows, si, lanes, f"{hint}/row")
            if self.slot_rows.dtype != np.int64:
                row = g.node("Cast", [row], to=i64, hint=f"{hint}/row64")
        hit = g.node("Cast", [g.node("Equal", [stored, keys], hint=f"{hint}/eq")],
                     to=i64, hint=f"{hint}/hit")
        return g.node("Mul", [row, hit], hint=f"{hint}/rows")


def _fastrange(h: np.ndarray, n: int) -> np.ndarray:
    """Top 32 bits of ``h`` scaled to [0, n) (Lemire), in place on ``h``."""
    h >>= np.uint64(32)
    h *= np.uint64(n)
    h >>= np.uint64(32)
    return h


def _odd_u64(rng, n: int) -> np.ndarray:
    return rng.integers(0, 1 << 63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


class HashIndex(KeyIndex):
    """Hash-and-displace from standard operators (no ai.onnx.ml): per level 3 small random
    reads (multiplier, slot key, slot row), or 2 with ``slot_order``, where the table is stored in
    slot order (``table_rows``) and a found key's row is its slot.

    Keys whose bucket cannot be placed go to the next, much smaller level (new constants), so
    correctness never depends on the hash constants; queries add the levels' results."""

    name = "hash"

    def __init__(self, keys: np.ndarray, rows=None, *, seed: int = 0x5EED,
                 slot_order: bool = False):
        if slot_order and rows is not None:
            raise ValueError("slot_order lays out the table itself: rows must be None")
        keys = np.asarray(keys)
        if keys.dtype != np.int64:
            keys = keys.astype(np.int64)
        rows = None if rows is None else np.asarray(rows)
        rng = np.random.default_rng(seed)
        self.levels: list[_HashLevel] = []
        sel = None  # positions of the keys still to place (None: all)
        while sel is None or sel.size:
            if len(self.levels) == HASH_LEVELS:
                _raise_unplaced(keys, sel)
            level, sel = _build_level(keys, rows, sel, rng, first=not self.levels)
            if level is None:
                break
            self.levels.append(level)
            if sel.size and np.unique(keys[sel]).size < sel.size:  # (never placeable)
                _raise_unplaced(keys, sel)
        self.slot_order = slot_order
        if slot_order:  # level i's slots follow row 0 and the slots of levels before it
            base = 0
            for level in self.levels:
                level.base, base = base, base + level.size

    def table_rows(self) -> np.ndarray:
        """For ``slot_order``: the trained row (1-based, 0 = zeros) of each table row."""
        parts = [np.zeros(1, dtype=np.int32)] + [l.slot_rows for l in self.levels]
        return np.concatenate(parts)

    def rows(self, keys):
        k = np.asarray(keys, dtype=np.int64)
        ku = k.view(np.uint64)
        out = np.zeros(k.shape, dtype=np.int64)
        for level in self.levels:
            out += level.rows(ku, k)
        return out

    def _emit_flat(self, g, keys, hint, lanes):
        if not self.levels:
            return g.node("Mul", [keys, g.const(np.int64(0))], hint=f"{hint}/rows")
        ku = g.node("Cast", [keys], to=TensorProto.UINT64, hint=f"{hint}/ku")
        out = None
        for i, level in enumerate(self.levels):
            r = level.emit(g, ku, keys, f"{hint}/hash{i}", lanes)
            out = r if out is None else g.node("Add", [out, r], hint=f"{hint}/sum")
        return out

    @property
    def nbytes(self):
        return LANES * sum(l.mults.nbytes + l.slot_keys.nbytes
                           + (0 if self.slot_order else l.slot_rows.nbytes)
                           for l in self.levels)


def _raise_unplaced(keys, sel):
    left = np.asarray(keys[sel])
    if np.unique(left).size < left.size:
        raise UsageError("duplicate keys in an embedding table: a key must map to one row")
    raise UsageError(f"hash lookup could not place {left.size} keys after {HASH_LEVELS} levels")


def _build_level(keys, rows, sel, rng, first: bool):
    """Place the keys at positions ``sel`` (all if None); returns (level, positions left)."""
    n = keys.size if sel is None else sel.size
    if n == 0:
        return None, np.zeros(0, dtype=np.int64)
    small = n <= SMALL_LEVEL
    load, rounds = (0.5, max(HASH_ROUNDS, SMALL_ROUNDS)) if small else (HASH_LOAD, HASH_ROUNDS)
    size = max(2, math.ceil(n / load))
    bits = min(max(1, math.ceil(math.log2(max(n / HASH_BUCKET_KEYS, 1)))), 31)  # mean 2-4
    ku = (keys if sel is None else keys[sel]).view(np.uint64)
    for attempt in range(HASH_BUCKET_TRIES):
        # Fibonacci hashing spreads arithmetic progressions (sequential ids) evenly
        a = GOLDEN if first and attempt == 0 else int(_odd_u64(rng, 1)[0])
        order, starts = _group_by_bucket(ku, np.uint64(a), bits)
        sizes = np.diff(starts)
        if sizes.max() <= HASH_MAX_BUCKET:
            break
    mults = np.zeros(1 << bits, dtype=np.uint32)  # 0 for empty buckets: all on slot 0
    max_row = n if rows is None else int(np.max(rows)) if np.size(rows) else 0
    slot_keys = np.zeros(size, dtype=np.int64)  # free slots: key 0 with row 0 (a miss)
    slot_rows = np.zeros(size, dtype=np.int32 if max_row < 2 ** 31 else np.int64)
    failed = []
    # bucket 0 first: it holds key 0, whose slot is 0 whatever the multiplier; then the
    # largest buckets first, in chunks that bound the temporaries
    groups = [np.zeros(1, dtype=np.int64)] if sizes[0] else []
    sizes[0] = 0
    for s in np.unique(sizes[sizes > 0])[::-1]:  # few distinct sizes
        bk = np.flatnonzero(sizes == s)
        groups += [bk[c:c + _CHUNK // 4] for c in range(0, bk.size, _CHUNK // 4)]
    for bk in groups:
        s = int(starts[bk[0] + 1] - starts[bk[0]])
        members = order[starts[bk][:, None] + np.arange(s)]  # [buckets, s] local positions
        left = _place(ku, np.uint64(a), members, bk, rows, sel, rng, mults, slot_keys,
                      slot_rows, rounds)
        if left.size:
            failed.append(members[left].ravel())
    rest = np.concatenate(failed) if failed else np.zeros(0, dtype=np.int64)
    rest = rest.astype(np.int64) if sel is None else sel[rest]
    level = _HashLevel(a, bits, mults, slot_keys, slot_rows)
    if slot_rows[0] == 0:
        _guard_slot_zero(level)
    return level, rest


def _guard_slot_zero(level: _HashLevel) -> None:
    """A free slot must never match a query: then only stored keys hit, and a slot-order
    row (slot + 1) or the sum over levels stays exact. Free slots hold key 0, which hashes
    to slot 0 only; a free slot 0 gets a small key that hashes elsewhere instead."""
    candidates = np.arange(1, 1025, dtype=np.int64)
    away = candidates[level.slots(candidates.view(np.uint64)) != 0]
    if away.size == 0:  # (every candidate on slot 0: only possible for a 1-slot level)
        raise UsageError("hash lookup: no guard key for free slot 0")
    level.slot_keys[0] = away[0]


def _group_by_bucket(ku, a, bits):
    """Positions sorted by bucket and bucket start offsets, via one in-place uint64 sort of
    (bucket << 32 | position) to avoid argsort's int64 temporaries."""
    n = ku.size
    tag = np.empty(n, dtype=np.uint64)
    for c in range(0, n, _CHUNK):
        t = tag[c:c + _CHUNK]
        np.multiply(ku[c:c + _CHUNK], a, out=t)
        t >>= np.uint64(64 - bits)
        t <<= np.uint64(32)
        t |= np.arange(c, c + t.size, dtype=np.uint64)
    tag.sort()
    starts = np.searchsorted(tag, np.arange((1 << bits) + 1, dtype=np.uint64) << np.uint64(32))
    order = np.empty(n, dtype=np.int32 if n < 2 ** 31 else np.int64)
    for c in range(0, n, _CHUNK):
        order[c:c + _CHUNK] = tag[c:c + _CHUNK] & np.uint64(0xFFFFFFFF)
    return order, starts.astype(order.dtype)


def _place(ku, a, members, bk, rows, sel, rng, mults, slot_keys, slot_rows, rounds):
    """Vectorized rounds: every pending bucket draws a multiplier; it is accepted if its slots
    are distinct, free and claimed by no other bucket this round. Returns the indices (into
    ``bk``) of buckets never placed. A slot is free while its row is 0 (rows are >= 1)."""
    kk = ku[members]
    if kk.shape[1] > 1:  # equal keys share a bucket: a repeated key is found here, early
        srt = np.sort(kk, axis=1) if kk.shape[1] > 2 else kk
        same = srt[:, 1:] == srt[:, :-1]
        if same.any():
            key = int(srt[:, 1:][same][0].view(np.int64))
            raise DuplicateKeyError(f"key {key} appears more than once; a key must map to one "
                                    "row")
    kh = kk * a  # the level's first hash; slots hash it again with each bucket's multiplier
    size = slot_rows.size
    claim = slot_rows  # free slots double as a scratch claim array within a round
    pending = np.arange(bk.size)
    for _ in range(rounds):
        m = rng.integers(0, 1 << 31, size=pending.size, dtype=np.uint32) * np.uint32(2) + 1
        slots = _fastrange(kh[pending] * m.astype(np.uint64)[:, None], size).view(np.int64)
        ok = ~slot_rows[slots].any(axis=1)
        if slots.shape[1] == 2:
            ok &= slots[:, 0] != slots[:, 1]
        elif slots.shape[1] > 2:
            srt = np.sort(slots, axis=1)
            ok &= (srt[:, 1:] != srt[:, :-1]).all(axis=1)
        cand = np.flatnonzero(ok)
        ids = (cand + 1)[:, None]  # nonzero ids; free slots hold row 0
        taken = slots[cand]
        claim[taken] = ids
        won = (claim[taken] == ids).all(axis=1)
        claim[taken[~won]] = 0  # (a winner's slot a loser also claimed is rewritten below)
        acc = cand[won]
        at = taken[won].ravel()
        pos = members[pending[acc]].ravel()
        slot_keys[at] = kk[pending[acc]].ravel().view(np.int64)
        glob = pos if sel is None else sel[pos]
        slot_rows[at] = glob + 1 if rows is None else rows[glob]
        mults[bk[pending[acc]]] = m[acc]
        pending = np.delete(pending, acc)
        if pending.size == 0:
            break
    return pending


# --- label encoder --------------------------------------------------------------------------

class LabelEncoderIndex(KeyIndex):
    """ai.onnx.ml LabelEncoder (a hash map inside ONNX Runtime); not available in TensorRT.

    With opset >= 20 the keys go into tensor attributes (ai.onnx.ml 4, faster to load and to
    run in ONNX Runtime); below that into int64 list attributes (ai.onnx.ml 2)."""

    name = "label_encoder"
    TENSOR_ATTRS_FROM_OPSET = 20

    def __init__(self, keys: np.ndarray, rows=None):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.values = _default_rows(self.keys.size, rows).astype(np.int64)
        self._sorted = None  # the mirror's sorted copy, made on first use

    def rows(self, keys):
        if self._sorted is None:
            order = np.argsort(self.keys)
            self._sorted = self.keys[order], self.values[order]
        sorted_keys, sorted_rows = self._sorted
        k = np.asarray(keys, dtype=np.int64)
        pos = np.clip(np.searchsorted(sorted_keys, k), 0, sorted_keys.size - 1)
        return np.where(sorted_keys[pos] == k, sorted_rows[pos], 0)

    def emit(self, g, keys, hint, per_sample=None):
        # elementwise, no broadcasting: runs on the keys' own shape
        if g.opset >= self.TENSOR_ATTRS_FROM_OPSET:
            g.ml_opset = max(g.ml_opset, 4)
            return g.node("LabelEncoder", [keys], domain="ai.onnx.ml", hint=f"{hint}/rows",
                          keys_tensor=numpy_helper.from_array(self.keys, "keys"),
                          values_tensor=numpy_helper.from_array(self.values, "values"),
                          default_tensor=numpy_helper.from_array(np.zeros(1, np.int64), "default"))
        g.ml_opset = max(g.ml_opset, 2)
        out = g.node("LabelEncoder", [keys], domain="ai.onnx.ml", hint=f"{hint}/rows",
                     default_int64=0)
        # filled in place: make_attribute would first copy the arrays into Python lists
        for name, values in (("keys_int64s", self.keys), ("values_int64s", self.values)):
            attr = helper.make_attribute(name, [0])
            del attr.ints[:]
            attr.ints.extend(values)
            g.nodes[-1].attribute.append(attr)
        return out

    @property
    def nbytes(self):
        return self.keys.nbytes + self.values.nbytes


# --- choice ---------------------------------------------------------------------------------

def _spread(keys: np.ndarray) -> int:
    return int(keys.max()) - int(keys.min()) + 1 if keys.size else 0


def resolve_strategy(keys: np.ndarray, strategy: str) -> str:
    """The strategy ``auto`` stands for on these keys (others unchanged)."""
    if strategy not in STRATEGIES:
        raise UsageError(f"lookup must be one of {list(STRATEGIES)}, found {strategy!r}")
    if strategy != "auto":
        return strategy
    compact = keys.size and _spread(keys) <= max(DIRECT_MAX_SPREAD * keys.size,
                                                 DIRECT_MIN_RANGE)
    return "direct" if compact else "hash"


def build_index(keys: np.ndarray, rows: np.ndarray | None = None,
                strategy: str = "auto", slot_order: bool = False) -> KeyIndex:
    """Index over unique ``keys``; ``rows`` default to 1..K in key order. ``slot_order``
    (hash only) means the table will be stored in the index's slot order.

    ``auto``: direct when the key range is compact, else the hash (measured fastest, and made
    of standard operators only)."""
    keys = np.asarray(keys)
    strategy = resolve_strategy(keys, strategy)
    if strategy == "direct":
        if not keys.size:
            raise UsageError("direct lookup needs at least one key")
        spread = _spread(keys)
        if spread > max(DIRECT_HARD_LIMIT * keys.size, 1 << 24):
            raise UsageError(f"direct lookup needs an array of {spread} entries for "
                             f"{keys.size} keys; use another lookup")
        return DirectIndex(keys, rows)
    if strategy == "hash":
        return HashIndex(keys, rows, slot_order=slot_order)
    return LabelEncoderIndex(keys, rows)

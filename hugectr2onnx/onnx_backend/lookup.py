"""Key -> row lookups for embedding tables.

Every strategy maps int64 keys to 1-based row ids of the table (row 0 is the all-zero row
that missing keys read), offers a numpy mirror ``rows`` and emits ONNX with ``emit``.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError

STRATEGIES = ("auto", "direct", "label_encoder")
DIRECT_MAX_SPREAD = 4  # direct array if the key range is at most this many times the key count
DIRECT_MIN_RANGE = 1 << 16  # ...or this small


class KeyIndex:
    name = ""

    def rows(self, keys: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def emit(self, g, keys: str, hint: str) -> str:
        raise NotImplementedError


class DirectIndex(KeyIndex):
    """A dense array over [min_key, max_key]: one Sub, one Gather."""

    name = "direct"

    def __init__(self, keys: np.ndarray, rows: np.ndarray):
        self.lo = int(keys.min())
        hi = int(keys.max())
        self.table = np.zeros(hi - self.lo + 1, dtype=np.int64)
        self.table[keys - self.lo] = rows

    def rows(self, keys):
        k = np.asarray(keys, dtype=np.int64) - self.lo
        inside = (k >= 0) & (k < self.table.size)
        return np.where(inside, self.table[np.clip(k, 0, self.table.size - 1)], 0)

    def emit(self, g, keys, hint):
        table = g.add_initializer(f"{hint}.key_rows", self.table)
        k = g.node("Sub", [keys, g.const(np.int64(self.lo))], hint=f"{hint}/offset")
        n = self.table.size
        inside = g.node("And", [g.node("GreaterOrEqual", [k, g.const(np.int64(0))]),
                                g.node("Less", [k, g.const(np.int64(n))])], hint=f"{hint}/inside")
        safe = g.node("Where", [inside, k, g.const(np.int64(0))], hint=f"{hint}/safe")
        found = g.node("Gather", [table, safe], axis=0, hint=f"{hint}/row")
        return g.node("Where", [inside, found, g.const(np.int64(0))], hint=f"{hint}/rows")


class LabelEncoderIndex(KeyIndex):
    """ai.onnx.ml LabelEncoder (a hash map inside ONNX Runtime); not available in TensorRT."""

    name = "label_encoder"

    def __init__(self, keys: np.ndarray, rows: np.ndarray):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.values = np.asarray(rows, dtype=np.int64)
        order = np.argsort(self.keys)
        self._sorted, self._sorted_rows = self.keys[order], self.values[order]

    def rows(self, keys):
        k = np.asarray(keys, dtype=np.int64)
        pos = np.clip(np.searchsorted(self._sorted, k), 0, self._sorted.size - 1)
        return np.where(self._sorted[pos] == k, self._sorted_rows[pos], 0)

    def emit(self, g, keys, hint):
        g.ml_opset = max(g.ml_opset, 2)
        return g.node("LabelEncoder", [keys], domain="ai.onnx.ml", hint=f"{hint}/rows",
                      keys_int64s=self.keys.tolist(), values_int64s=self.values.tolist(),
                      default_int64=0)


def build_index(keys: np.ndarray, rows: np.ndarray | None = None,
                strategy: str = "auto") -> KeyIndex:
    """Index over unique ``keys``; ``rows`` default to 1..K in key order."""
    keys = np.asarray(keys, dtype=np.int64)
    if rows is None:
        rows = np.arange(1, keys.size + 1, dtype=np.int64)
    if strategy not in STRATEGIES:
        raise UsageError(f"lookup must be one of {list(STRATEGIES)}, found {strategy!r}")
    if strategy == "auto":
        spread = int(keys.max()) - int(keys.min()) + 1 if keys.size else 0
        compact = spread <= max(DIRECT_MAX_SPREAD * keys.size, DIRECT_MIN_RANGE)
        strategy = "direct" if compact else "label_encoder"
    if strategy == "direct":
        spread = int(keys.max()) - int(keys.min()) + 1
        if spread > max(64 * keys.size, 1 << 24):
            raise UsageError(f"direct lookup needs an array of {spread} entries for "
                             f"{keys.size} keys; use another lookup")
        return DirectIndex(keys, rows)
    return LabelEncoderIndex(keys, rows)

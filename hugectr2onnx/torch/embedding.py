"""A HugeCTR sparse embedding as a trainable table with HugeCTR's key semantics.

* Any int64 key. The key -> row map is a sorted copy of the keys searched with
  ``torch.searchsorted`` (plus a small sorted delta of keys added since the last merge), so no
  Python loop ever runs over keys. Unseen keys give zero vectors.
* ``sum`` of the found rows per slot; ``mean`` divides by the count of non-padding keys
  (unseen keys included), as HugeCTR's combiner does.
* Localized tables whose keys repeat across GPUs look a slot up among the keys of its GPU
  (``slot_id % num_gpus == slot % num_gpus``), like the converter.
* In ``train()`` mode a key first seen gets a fresh row, up to ``capacity`` rows (HugeCTR's
  ``max_vocabulary_size_global``). HugeCTR fills its whole value buffer with U(-0.05, 0.05)
  before training (``init_embedding``), so a new key's row starts from that distribution;
  reserved rows are drawn at construction, as HugeCTR does. New Localized keys take the slot
  they were first seen in as ``slot_id``.
* ``sparse=True`` makes the table's gradient a sparse tensor (torch.optim.SGD, SparseAdam,
  Adagrad then touch only the rows of the batch).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..progress import progress_bar

NEW_ROW_BOUND = 0.05  # HugeCTR's init_embedding: UniformGenerator::fill(-0.05f, 0.05f)
COPY_ROWS = 1 << 20
MIN_DELTA = 1 << 14  # merge the delta of new keys into the main index beyond this size
DIRECT_SPAN = 2  # direct key -> row array when the keys span less than 2x their count


class _Index:
    """Sorted keys of one GPU group (main + delta), each with its row."""

    def __init__(self, keys: torch.Tensor, rows: torch.Tensor):
        order = torch.argsort(keys)
        self._set_main(keys[order], rows[order])
        self.delta_keys = keys[:0]
        self.delta_rows = rows[:0]

    def _set_main(self, keys: torch.Tensor, rows: torch.Tensor) -> None:
        """Sorted keys; keys packed in a short range (a static collection table's row
        indices, slot-size tables) also get a direct key -> row array, one gather per key
        instead of a binary search (bench/torch_collection_lookup.py: 1.4-2.2x)."""
        self.keys, self.rows, self.direct = keys, rows, None
        n = keys.numel()
        if n and int(keys[-1]) - int(keys[0]) < DIRECT_SPAN * n:
            self.low = int(keys[0])
            self.direct = torch.full((int(keys[-1]) - self.low + 1,), -1, dtype=rows.dtype,
                                     device=rows.device)
            self.direct[keys - self.low] = rows

    @staticmethod
    def _search(sorted_keys, rows, q):
        if sorted_keys.numel() == 0:
            return torch.full_like(q, -1)
        pos = torch.searchsorted(sorted_keys, q).clamp_(max=sorted_keys.numel() - 1)
        return torch.where(sorted_keys[pos] == q, rows[pos], -1)

    def find(self, q: torch.Tensor) -> torch.Tensor:
        """Row of each key, -1 where absent."""
        if self.direct is not None:
            last = self.direct.numel() - 1
            inside = (q >= self.low) & (q <= self.low + last)  # q - low may wrap outside
            found = torch.where(inside, self.direct[(q - self.low).clamp(0, last)], -1)
        else:
            found = self._search(self.keys, self.rows, q)
        if self.delta_keys.numel():
            found = torch.where(found >= 0, found, self._search(self.delta_keys, self.delta_rows, q))
        return found

    def add(self, keys: torch.Tensor, rows: torch.Tensor) -> None:
        dk = torch.cat([self.delta_keys, keys])
        dr = torch.cat([self.delta_rows, rows])
        if dk.numel() > max(MIN_DELTA, self.keys.numel() // 8):
            dk, dr = torch.cat([self.keys, dk]), torch.cat([self.rows, dr])
            order = torch.argsort(dk)
            self._set_main(dk[order], dr[order])
            self.delta_keys, self.delta_rows = dk[:0], dr[:0]
        else:
            order = torch.argsort(dk)
            self.delta_keys, self.delta_rows = dk[order], dr[order]


class HugeCTREmbedding(nn.Module):
    """One sparse embedding: ``weight`` [capacity + 1, vec] (the last row stands for absent
    keys and is set to zero before every lookup; its gradient is never used), buffers ``keys`` (row -> key), ``slot_ids`` (Localized) and
    ``num_keys`` (rows in use)."""

    def __init__(self, vec_size: int, slot_num: int, *, combiner: str = "sum",
                 keys: np.ndarray | None = None, vectors: np.ndarray | None = None,
                 slot_ids: np.ndarray | None = None, localized: bool = False,
                 capacity: int | None = None, num_gpus: int = 1, padding_key: int | None = -1,
                 sparse: bool = False, progress: bool | None = None, name: str = ""):
        super().__init__()
        keys = np.zeros(0, np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
        n = keys.size
        capacity = max(int(capacity or 0), n)
        self.vec_size, self.slot_num, self.combiner = vec_size, slot_num, combiner
        self.localized, self.num_gpus, self.padding_key = localized, num_gpus, padding_key
        self.sparse = sparse
        weight = torch.empty(capacity + 1, vec_size)
        weight[n:capacity].uniform_(-NEW_ROW_BOUND, NEW_ROW_BOUND)
        weight[capacity] = 0
        with progress_bar(n * vec_size * 4, f"table {name}", progress) as bar:
            for start in range(0, n, COPY_ROWS):  # chunks: the file may be a memory map
                part = np.array(vectors[start:start + COPY_ROWS], dtype=np.float32)
                weight[start:start + part.shape[0]] = torch.from_numpy(part.reshape(-1, vec_size))
                bar.update(part.nbytes)
        self.weight = nn.Parameter(weight)
        key_buf = torch.zeros(capacity, dtype=torch.int64)
        key_buf[:n] = torch.from_numpy(np.array(keys))
        self.register_buffer("keys", key_buf)
        self.register_buffer("num_keys", torch.tensor(n, dtype=torch.int64))
        if localized:
            sid = torch.zeros(capacity, dtype=torch.int64)
            if slot_ids is not None and n:
                sid[:n] = torch.from_numpy(np.asarray(slot_ids).astype(np.int64))
            self.register_buffer("slot_ids", sid)
        else:
            self.slot_ids = None
        self._index: list[_Index] | None = None

    @property
    def capacity(self) -> int:
        return int(self.keys.numel())

    # ---------------------------------------------------------------- key -> row
    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._index = None

    def _apply(self, fn, *args, **kwargs):  # .to(device) etc.: rebuild the index there
        self._index = None
        return super()._apply(fn, *args, **kwargs)

    def _groups(self) -> list[_Index]:
        if self._index is None:
            n = int(self.num_keys)
            keys, rows = self.keys[:n], torch.arange(n, device=self.keys.device)
            if self.num_gpus == 1:
                self._index = [_Index(keys, rows)]
            else:
                group = self.slot_ids[:n] % self.num_gpus
                self._index = [_Index(keys[group == g], rows[group == g])
                               for g in range(self.num_gpus)]
        return self._index

    def _slot_groups(self) -> list[torch.Tensor | None]:
        if self.num_gpus == 1:
            return [None]
        slots = torch.arange(self.slot_num, device=self.keys.device)
        return [torch.nonzero(slots % self.num_gpus == g).reshape(-1)
                for g in range(self.num_gpus)]

    def rows(self, keys: torch.Tensor, *, insert: bool = False) -> torch.Tensor:
        """Row of each key [B, S, N], -1 where absent (and for padding)."""
        keys = keys.to(torch.int64)
        out = keys if self.num_gpus == 1 else torch.full_like(keys, -1)
        present = (torch.ones_like(keys, dtype=torch.bool) if self.padding_key is None
                   else keys != self.padding_key)
        for index, slots in zip(self._groups(), self._slot_groups()):
            q = keys if slots is None else keys[:, slots]
            found = index.find(q)
            if insert:
                found = self._insert(index, q, found, present if slots is None
                                     else present[:, slots], slots)
            if slots is None:
                out = found
            else:
                out[:, slots] = found
        return out if self.padding_key is None else torch.where(present, out, -1)

    @torch.no_grad()
    def _insert(self, index, q, found, present, slots):
        missing = (found < 0) & present
        if not bool(missing.any()):
            return found
        free = self.capacity - int(self.num_keys)
        if free <= 0:
            return found
        new_keys, first = _unique_first(q[missing])
        new_keys, first = new_keys[:free], first[:free]
        start = int(self.num_keys)
        rows = torch.arange(start, start + new_keys.numel(), device=q.device)
        self.keys[rows] = new_keys
        if self.slot_ids is not None:  # the slot each new key was first seen in
            slot_of = torch.arange(q.shape[1], device=q.device).view(1, -1, 1).expand_as(q)
            slot_of = slot_of[missing][first]
            self.slot_ids[rows] = slot_of if slots is None else slots[slot_of]
        self.num_keys.fill_(start + new_keys.numel())
        index.add(new_keys, rows)
        return index.find(q)

    # ---------------------------------------------------------------- lookup
    def forward(self, keys: torch.Tensor, combiner: str | None = None) -> torch.Tensor:
        """keys int64 [B, S, N] (padded with ``padding_key``) -> [B, S, vec], or with the
        ``concat`` combiner (embedding collections) [B, S, N * vec]: the slot's rows side by
        side, absent and unseen keys as zero rows. ``combiner``: this lookup's, when several
        lookups of an embedding collection share the table (default: the table's own)."""
        combiner = combiner or self.combiner
        b, s, n = keys.shape
        rows = self.rows(keys, insert=self.training)
        pad = self.capacity  # the zero row
        # kept zero here rather than by padding_idx, which makes embedding_bag 1.6-1.8x
        # slower (measured, torch 2.13 CPU); only after an optimizer step moved it
        if bool(self.weight[pad].any()):
            with torch.no_grad():
                self.weight[pad].zero_()
        flat = torch.where(rows >= 0, rows, pad).reshape(b * s, n)
        if combiner == "concat":
            return F.embedding(flat, self.weight, sparse=self.sparse).reshape(
                b, s, n * self.vec_size)
        out = F.embedding_bag(flat, self.weight, mode="sum",
                              sparse=self.sparse).reshape(b, s, self.vec_size)
        if combiner == "mean" and n > 1:
            if self.padding_key is None:
                return out / n
            count = (keys != self.padding_key).sum(dim=2, keepdim=True)
            out = out / count.clamp_min(1).to(out.dtype)
        return out

    # ---------------------------------------------------------------- export
    @torch.no_grad()
    def load_rows(self, keys: torch.Tensor, vectors: torch.Tensor,
                  slot_ids: torch.Tensor | None = None) -> None:
        """Set the rows in use (a trimmed checkpoint's); reserved rows keep their draw."""
        n = int(keys.numel())
        if n > self.capacity:
            raise ValueError(f"{n} keys exceed the table's capacity {self.capacity}")
        self.keys[:n] = keys
        self.weight[:n] = vectors
        if self.slot_ids is not None and slot_ids is not None:
            self.slot_ids[:n] = slot_ids
        self.num_keys.fill_(n)
        self._index = None

    def table(self) -> dict:
        """The rows in use as numpy arrays for HugeCTR's sparse files."""
        n = int(self.num_keys)
        t = {"keys": self.keys[:n].cpu().numpy().copy(),
             "vectors": self.weight.detach()[:n].cpu().numpy().astype(np.float32)}
        if self.slot_ids is not None:
            t["slot_ids"] = self.slot_ids[:n].cpu().numpy().astype(np.uint64)
        return t


def _unique_first(values: torch.Tensor):
    """Distinct values in order of first appearance, and the position of each first one."""
    uniq, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((uniq.numel(),), values.numel(), dtype=torch.int64, device=values.device)
    first.scatter_reduce_(0, inverse, torch.arange(values.numel(), device=values.device), "amin")
    order = torch.argsort(first)
    return uniq[order], first[order]

"""Norm data files (HUGECTR_FORMATS 6.1): a 64-byte header, then variable-length samples,
optionally each record framed as [int32 L][L bytes][int8 checksum].

Finding where each sample starts is a chain (a sample's length depends on its nnz fields),
so it is done without a loop over samples in two ways:
* a fixed-run guess: all samples shaped like the first one, checked at once on a structured
  view (one-hot and fixed-hotness data, the common case, decode as one array copy);
* otherwise pointer jumping over a window of the file: for every 4-byte position (every
  byte when framed) where a sample could start, where the next one would start, walking
  the slots for all positions at once and dropping those whose nnz field is out of range;
  the chain from the known start is then followed by repeated doubling (log2 of the
  samples in the window).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import DatasetError
from .common import Chunk, MappedFile, pad_keys, widen_keys
from .layout import DataLayout

HEADER_BYTES = 64
HEADER = np.dtype([("error_check", "<i8"), ("number_of_records", "<i8"), ("label_dim", "<i8"),
                   ("dense_dim", "<i8"), ("slot_num", "<i8"), ("reserved", "<i8", (3,))])
WINDOW_BYTES = 4 << 20  # candidate positions examined at once by the pointer jumping
MIN_RUN = 32  # a fixed-run guess shorter than this falls back to the general path


def _hint(layout: DataLayout) -> str:
    other = "I32" if layout.key_type == "I64" else "I64"
    return (f" (read with {layout.key_type} keys; if the training run used "
            f"{'32' if other == 'I32' else '64'}-bit keys, use key type {other})")


class NormFile:
    def __init__(self, path, layout: DataLayout):
        self.layout = layout
        self.m = MappedFile(path)
        self.path = self.m.path
        self.kb = layout.key_bytes
        self.width = layout.label_dim + layout.dense_dim
        buf = self.m.buf
        if self.m.size < 4:
            raise DatasetError(f"file of {self.m.size} bytes has no header", file=self.path,
                               where="header")
        self.framed = int(buf[:4].view("<i4")[0]) == HEADER_BYTES
        start = 4 if self.framed else 0
        if self.m.size < start + HEADER_BYTES + (1 if self.framed else 0):
            raise DatasetError("truncated header", file=self.path, where="header")
        head = buf[start:start + HEADER_BYTES].view(HEADER)[0]
        if self.framed and _checksum(buf[start:start + HEADER_BYTES]) != buf[start + HEADER_BYTES]:
            raise DatasetError("bad checksum", file=self.path, where="header")
        self.records = int(head["number_of_records"])
        self.data_start = start + HEADER_BYTES + (1 if self.framed else 0)
        self._check_header(head)

    def _check_header(self, head) -> None:
        lay, where = self.layout, None
        check = int(head["error_check"])
        if check not in (0, 1) or check != int(self.framed):
            where = ("header.error_check", f"error_check {check} but the file is "
                     f"{'checksum-framed' if self.framed else 'not framed'}")
        elif self.records < 0:
            where = ("header.number_of_records", f"number_of_records {self.records}")
        elif int(head["label_dim"]) < 0 or int(head["dense_dim"]) < 0 or \
                int(head["label_dim"]) + int(head["dense_dim"]) != self.width:
            where = ("header.label_dim+dense_dim", f"label_dim {int(head['label_dim'])} + "
                     f"dense_dim {int(head['dense_dim'])}, the model has {lay.label_dim} + "
                     f"{lay.dense_dim}")
        elif int(head["slot_num"]) != lay.slot_num:
            where = ("header.slot_num", f"slot_num {int(head['slot_num'])}, the model has "
                     f"{lay.slot_num}")
        if where:
            raise DatasetError(where[1], file=self.path, where=where[0])

    # ------------------------------------------------------------------ structure
    def _walk_one(self, pos: int, record: int) -> tuple[int, list[int]]:
        """Scalar walk over the slots of one sample at payload ``pos``: its end and the nnz
        of each slot; names the field that is truncated or bad."""
        buf, size = self.m.buf, self.m.size
        limits = self._slot_limits()
        p = pos + 4 * self.width
        nnz = []
        for s in range(self.layout.slot_num):
            if p + 4 > size:
                raise DatasetError("truncated" + _hint(self.layout), file=self.path,
                                   where=f"record {record} (byte {pos}), slot {s} nnz")
            n = int(buf[p:p + 4].view("<i4")[0])
            if n < 0:
                raise DatasetError(f"negative nnz {n}", file=self.path,
                                   where=f"record {record} (byte {p}), slot {s} nnz")
            if n > limits[s] and p + 4 + n * self.kb <= size:
                raise DatasetError(f"nnz {n} exceeds the model's {limits[s]} keys per slot",
                                   file=self.path, where=f"record {record} (byte {pos}), "
                                   f"slot {s} nnz")
            p += 4 + n * self.kb
            nnz.append(n)
        if p > size:
            raise DatasetError("truncated" + _hint(self.layout), file=self.path,
                               where=f"record {record} (byte {pos}), slot "
                               f"{self.layout.slot_num - 1} keys")
        return p, nnz

    def _dtype(self, nnz: list[int]) -> np.dtype:
        key = "<u4" if self.kb == 4 else "<i8"
        fields = [("L", "<i4")] if self.framed else []
        fields.append(("values", "<f4", (self.width,)))
        for s, n in enumerate(nnz):
            fields += [(f"n{s}", "<i4"), (f"k{s}", key, (n,))]
        if self.framed:
            fields.append(("sum", "u1"))
        return np.dtype(fields)

    def _fixed_run(self, pos: int, record: int, limit: int):
        """Samples from ``pos`` shaped like the one there: (structured array, count)."""
        payload = pos + 4 if self.framed else pos
        _, nnz = self._walk_one(payload, record)
        dt = self._dtype(nnz)
        n = min(limit, (self.m.size - pos) // dt.itemsize)
        recs = np.ndarray((n,), dt, self.m.buf, pos)
        ok = np.ones(n, bool)
        for s, want in enumerate(nnz):
            ok &= recs[f"n{s}"] == want
        if self.framed:
            ok &= recs["L"] == dt.itemsize - 5
        bad = np.flatnonzero(~ok)
        count = int(bad[0]) if bad.size else n
        return recs[:count], count

    def _slot_limits(self) -> np.ndarray:
        """The largest nnz each slot can hold: the padded width of its key input."""
        return np.concatenate([np.full(s.slot_num, s.max_nnz, np.int64)
                               for s in self.layout.sparse] or [np.zeros(0, np.int64)])

    def _candidates_plain(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Of every 4-byte-aligned position in [lo, hi), those where a well-formed sample
        could start, and where the next one would then start (byte offsets). Walks the
        slots once for all positions, dropping a position as soon as an nnz field is out of
        range: few positions besides real sample starts survive the first slots."""
        words = self._words()
        nw = words.size
        first = (lo - self.data_start) // 4 + self.width  # the first nnz field of each
        count = max(0, min((hi - lo + 3) // 4, nw - first))
        limits = self._slot_limits()
        if count == 0 or limits.size == 0:  # (without slots every sample is a fixed run)
            empty = np.zeros(0, np.int64)
            return empty, empty
        n = words[first:first + count]  # positions in a row: a slice, no gather
        keep = np.flatnonzero((n >= 0) & (n <= limits[0]))
        start = lo + 4 * keep.astype(np.int64)
        p = first + keep + 1 + n[keep].astype(np.int64) * (self.kb // 4)
        step = self.kb // 4
        for limit in limits[1:]:
            n = words[np.clip(p, 0, nw - 1)].astype(np.int64)
            ok = (p < nw) & (n >= 0) & (n <= limit)
            start, p = start[ok], p[ok] + 1 + n[ok] * step
        ok = p <= nw
        return start[ok], p[ok] * 4 + self.data_start

    def _candidates_framed(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Like ``_candidates_plain`` for framed files, from the length prefix at every byte
        (a length outside what the model's samples can take rules a position out)."""
        buf, size = self.m.buf, self.m.size
        hi4 = min(hi + 3, size)
        b = np.concatenate([buf[lo:hi4], np.zeros(hi + 3 - hi4, np.uint8)]).astype(np.int64)
        n = hi - lo
        length = b[:n] | (b[1:n + 1] << 8) | (b[2:n + 2] << 16) | (b[3:n + 3] << 24)
        length = np.where(length >= 1 << 31, length - (1 << 32), length)
        start = np.arange(lo, hi, dtype=np.int64)
        nxt = start + 5 + length
        fixed = 4 * (self.width + self.layout.slot_num)
        most = fixed + self.kb * int(self._slot_limits().sum())
        ok = (length >= fixed) & (length <= most) & ((length - fixed) % self.kb == 0) & \
             (nxt <= size)
        return start[ok], nxt[ok]

    def _chain(self, pos: int, record: int, limit: int, window: int) -> tuple[np.ndarray, int]:
        """Starts of up to ``limit`` consecutive samples from ``pos`` inside one window of
        ``window`` bytes, by pointer doubling over the candidate starts; also the start of
        the sample after the last one returned."""
        step = 1 if self.framed else 4
        hi = min(self.m.size, pos + max(window, 64 * step))
        starts, nxt = (self._candidates_framed if self.framed else self._candidates_plain)(pos, hi)
        if starts.size == 0 or starts[0] != pos:  # the first sample itself is malformed
            self._bad(pos, record)
        count = starts.size
        exit_, bad = count, count + 1  # absorbing nodes: left the window / malformed
        idx = np.minimum(np.searchsorted(starts, nxt), count - 1)
        jump = np.where(nxt >= hi, exit_, np.where(starts[idx] == nxt, idx, bad))
        jump = np.concatenate([jump, [exit_, bad]])
        found = np.zeros(1, np.int64)
        while found.size < limit:
            ahead = jump[found]
            inside = ahead[ahead < count]
            if inside.size == 0:
                break
            found = np.union1d(found, inside)
            jump = jump[jump]
        found = found[:limit]
        last = int(found[-1])
        if found.size < limit and nxt[last] < hi:  # the chain ran into a malformed sample
            self._bad(int(nxt[last]), record + found.size)
        return starts[found], int(nxt[last])

    def _bad(self, pos: int, record: int) -> None:
        """Name what is wrong with the sample at ``pos``."""
        self._walk_one(pos + (4 if self.framed else 0), record)
        raise DatasetError("bad record length or truncated" + _hint(self.layout),
                           file=self.path, where=f"record {record} (byte {pos})")

    # ------------------------------------------------------------------ decoding
    def _decode_run(self, recs: np.ndarray, record: int) -> Chunk:
        lay = self.layout
        if self.framed:
            raw = recs.view(np.uint8).reshape(recs.size, recs.dtype.itemsize)
            sums = _checksum_rows(raw[:, 4:-1])
            bad = np.flatnonzero(sums != raw[:, -1])
            if bad.size:
                raise DatasetError("bad checksum", file=self.path, where=f"record {record + int(bad[0])}")
        values = np.array(recs["values"], np.float32)
        keys, s = [], 0
        for inp in lay.sparse:
            per_slot = []
            for j in range(inp.slot_num):
                k = recs[f"k{s}"]
                if k.shape[1] > inp.max_nnz:
                    raise DatasetError(f"nnz {k.shape[1]} exceeds the model's {inp.max_nnz} "
                                       f"keys per slot of {inp.name}", file=self.path,
                                       where=f"record {record}, slot {s} nnz")
                per_slot.append(widen_keys(k, lay.key_type))
                s += 1
            keys.append(pad_keys(per_slot, inp, lay.padding_key))
        return self._chunk(values, keys)

    def _chunk(self, values: np.ndarray, keys) -> Chunk:
        lay = self.layout
        return Chunk(values[:, :lay.label_dim], values[:, lay.label_dim:], keys)

    def _words(self) -> np.ndarray:
        size = self.m.size
        return self.m.buf[self.data_start:self.data_start + (size - self.data_start) // 4 * 4] \
            .view("<i4")

    def _reader(self):
        """``read(byte_positions, dtype)``: values at sample-relative byte positions; word
        gathers for plain files (every field is 4-byte aligned), byte gathers when framed."""
        if self.framed:
            return lambda pos, dtype: _gather(self.m.buf, pos, dtype)
        words, base = self._words(), self.data_start

        def read(pos, dtype):
            w = (pos - base) >> 2
            if np.dtype(dtype).itemsize == 4:
                return words[w].view(dtype)
            lo = words[w].view(np.uint32).astype(np.int64)
            return lo | (words[w + 1].astype(np.int64) << 32)
        return read

    def _decode_at(self, starts: np.ndarray, record: int) -> Chunk:
        """Samples at arbitrary record starts (the general path)."""
        lay, buf = self.layout, self.m.buf
        n = starts.size
        if self.framed:
            length = _gather(buf, starts, "<i4")
            ends = starts + 4 + length
            sums = _segment_checksums(buf, starts + 4, ends)
            bad = np.flatnonzero(sums != buf[ends])
            if bad.size:
                raise DatasetError("bad checksum", file=self.path,
                                   where=f"record {record + int(bad[0])}")
            p = starts + 4
        else:
            p = starts.copy()
        read = self._reader()
        values = read(p[:, None] + 4 * np.arange(self.width), "<f4").reshape(n, self.width)
        p = p + 4 * self.width
        keys, s = [], 0
        key_dtype = "<u4" if self.kb == 4 else "<i8"
        for inp in lay.sparse:
            out = np.full((n, inp.slot_num, inp.max_nnz), lay.padding_key, np.int64)
            for j in range(inp.slot_num):
                nnz = read(p, "<i4").astype(np.int64)
                over = np.flatnonzero(nnz > inp.max_nnz)
                if over.size:
                    r = int(over[0])
                    raise DatasetError(f"nnz {int(nnz[r])} exceeds the model's {inp.max_nnz} "
                                       f"keys per slot of {inp.name}", file=self.path,
                                       where=f"record {record + r} (byte {int(starts[r])}), "
                                       f"slot {s} nnz")
                m = int(nnz.max()) if n else 0
                if m:
                    pos = p[:, None] + 4 + self.kb * np.arange(m)
                    present = np.arange(m) < nnz[:, None]
                    got = read(np.where(present, pos, p[:, None]), key_dtype).reshape(n, m)
                    got = widen_keys(got, lay.key_type)
                    out[:, j, :m] = np.where(present, got, lay.padding_key)
                p = p + 4 + self.kb * nnz
                s += 1
            keys.append(out)
        if self.framed:
            off = np.flatnonzero(p != ends)
            if off.size:
                r = int(off[0])
                raise DatasetError("record length disagrees with its nnz fields" +
                                   _hint(lay), file=self.path,
                                   where=f"record {record + r} (byte {int(starts[r])})")
        return self._chunk(values, keys)

    # ------------------------------------------------------------------ iteration
    def chunks(self, chunk_samples: int) -> Iterator[Chunk]:
        pos, record = self.data_start, 0
        try:
            while record < self.records:
                want = min(chunk_samples, self.records - record)
                if pos >= self.m.size:
                    raise DatasetError(f"the header promises {self.records} records, the file "
                                       f"ends after {record}", file=self.path,
                                       where=f"record {record} (byte {pos})")
                recs, count = self._fixed_run(pos, record, want)
                if count >= min(MIN_RUN, want):
                    chunk = self._decode_run(recs, record)
                    pos += count * recs.dtype.itemsize
                else:
                    # the window holds about ``want`` samples of the mean size so far
                    mean = (pos - self.data_start) / record if record else recs.dtype.itemsize
                    window = min(WINDOW_BYTES, int(1.15 * want * mean) + 4096)
                    starts, pos = self._chain(pos, record, want, window)
                    count = starts.size
                    chunk = self._decode_at(starts, record)
                record += count
                self.m.release(pos)
                yield chunk
        finally:
            self.m.close()


def _checksum(payload: np.ndarray) -> int:
    return int(payload.astype(np.int64).sum()) & 0xFF


def _checksum_rows(rows: np.ndarray) -> np.ndarray:
    return (rows.sum(axis=1, dtype=np.int64) & 0xFF).astype(np.uint8)


def _segment_checksums(buf: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Byte sums mod 256 of buf[lo[i]:hi[i]] (consecutive segments of one region)."""
    first, last = int(lo.min()), int(hi.max())
    cum = np.concatenate([[0], np.cumsum(buf[first:last], dtype=np.int64)])
    return ((cum[hi - first] - cum[lo - first]) & 0xFF).astype(np.uint8)


def _gather(buf: np.ndarray, pos: np.ndarray, dtype: str) -> np.ndarray:
    """Values of ``dtype`` at arbitrary (unaligned) byte positions."""
    width = np.dtype(dtype).itemsize
    idx = np.asarray(pos, np.int64)[..., None] + np.arange(width)
    return np.ascontiguousarray(buf[idx]).view(dtype)[..., 0]


def read_norm(files: list[str], layout: DataLayout, chunk_samples: int) -> Iterator[Chunk]:
    for path in files:
        yield from NormFile(path, layout).chunks(chunk_samples)

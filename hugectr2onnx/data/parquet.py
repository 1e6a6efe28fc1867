"""Parquet datasets (HUGECTR_FORMATS 6.4): ``_file_list.txt`` plus ``_metadata.json``,
columns chosen by index, list columns for multi-hot slots, ``slot_size_array`` key offsets.
Read with pyarrow's batch iterator (the ``parquet`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DatasetError, UsageError
from .common import Chunk, check_readable, read_file_list
from .layout import DataLayout

KEY_WIDTH = {"I32": 4, "I64": 8}


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("reading Parquet needs pyarrow: pip install 'hugectr2onnx[parquet]'") \
            from None
    return pa, pq


def parquet_files(source) -> tuple[list[str], Path]:
    """The data files and the ``_metadata.json`` of a Parquet dataset. ``source``: the file
    list, a directory holding ``_file_list.txt``, or a list of Parquet files. The metadata
    is looked for beside the first Parquet file, as HugeCTR does, then beside the list."""
    if isinstance(source, (list, tuple)):
        files, listed = [str(s) for s in source], None
    else:
        p = Path(source)
        listed = p / "_file_list.txt" if p.is_dir() else p
        if listed.suffix == ".parquet":
            files, listed = [str(listed)], None
        else:
            files = read_file_list(listed)
    if not files:
        raise DatasetError("no Parquet files listed", file=str(source))
    for f in files:
        check_readable(f)
    for meta in (Path(files[0]).parent / "_metadata.json",
                 *([listed.parent / "_metadata.json"] if listed is not None else [])):
        if meta.exists():
            return files, meta
    raise DatasetError("no _metadata.json beside the first Parquet file", file=files[0])


def _metadata(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
        groups = {g: sorted({int(c["index"]) for c in doc.get(g) or []})
                  for g in ("labels", "conts", "cats")}
        stats = {Path(s["file_name"]).name: int(s["num_rows"]) for s in doc.get("file_stats") or []}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise DatasetError(f"malformed: {e}", file=str(path)) from None
    return {**groups, "stats": stats}


class ParquetReader:
    """A Parquet dataset checked against a model's layout. ``chunks`` reads it all; ``open``
    gives one file, whose record batches or row groups decode on their own (Ray's actors)."""

    def __init__(self, source, layout: DataLayout):
        self.pa, self.pq = _pyarrow()
        self.layout = layout
        self.files, meta_path = parquet_files(source)
        self.meta_path = str(meta_path)
        self.meta = _metadata(meta_path)
        if len(self.meta["cats"]) != layout.slot_num:
            raise DatasetError(f"{len(self.meta['cats'])} categorical columns, the model has "
                               f"{layout.slot_num} slots", file=self.meta_path, where="cats")
        self.offsets = layout.key_offsets()

    def open(self, path: str) -> "ParquetFileReader":
        """One file of the dataset, its row count, column indices and types checked."""
        return ParquetFileReader(self, str(path))

    def chunks(self, chunk_samples: int) -> Iterator[Chunk]:
        for path in self.files:
            yield from self.open(path).chunks(chunk_samples)


class ParquetFileReader:
    """One Parquet file of a dataset: ``chunks`` (optionally of some row groups only) and
    ``decode`` of one pyarrow record batch read with ``columns``."""

    def __init__(self, dataset: ParquetReader, path: str):
        self.dataset, self.path = dataset, path
        self.pa, self.meta, self.layout = dataset.pa, dataset.meta, dataset.layout
        try:
            self.file = dataset.pq.ParquetFile(path)
        except (OSError, self.pa.ArrowException) as e:
            raise DatasetError(f"not a readable Parquet file: {e}", file=path) from None
        rows = self.file.metadata.num_rows
        want = self.meta["stats"].get(Path(path).name)
        if want is not None and want != rows:
            raise DatasetError(f"_metadata.json says {want} rows, the file has {rows}",
                               file=path, where="num_rows")
        self._names = self._pick_columns()
        self._check_types()
        self.columns = list(dict.fromkeys(self._names.values()))  # what decode needs

    def _pick_columns(self) -> dict[int, str]:
        """Names of the label, dense and key columns, by schema index."""
        names = self.file.schema_arrow.names
        picked = {}
        for group in ("labels", "conts", "cats"):
            for i in self.meta[group]:
                if not 0 <= i < len(names):
                    raise DatasetError(f"column index {i} ({group}) but the file has "
                                       f"{len(names)} columns", file=self.path,
                                       where=f"column {i}")
                picked[i] = names[i]
        if len(set(picked.values())) != len(picked):
            raise DatasetError("selected columns have repeated names", file=self.path)
        return picked

    def _check_types(self) -> None:
        pa, schema = self.pa, self.file.schema_arrow
        want_key = KEY_WIDTH[self.layout.key_type]
        for i in self.meta["labels"] + self.meta["conts"]:
            t = schema.field(i).type
            base = t.value_type if _is_list(pa, t) else t
            if not pa.types.is_float32(base):
                raise DatasetError(f"label/dense column must be float32 or list<float32>, "
                                   f"found {t}", file=self.path, where=f"column {i} "
                                   f"({schema.field(i).name})")
        for i in self.meta["cats"]:
            t = schema.field(i).type
            listed = _is_list(pa, t)
            base = t.value_type if listed else t
            if not pa.types.is_integer(base) or base.bit_width // 8 != want_key:
                raise DatasetError(f"key column must be int{want_key * 8}/uint{want_key * 8} "
                                   f"(or a list of it) for {self.layout.key_type} keys, found {t}",
                                   file=self.path, where=f"column {i} ({schema.field(i).name})")

    def chunks(self, chunk_samples: int, row_groups: list[int] | None = None,
               first_row: int = 0) -> Iterator[Chunk]:
        """The file's rows (or those of ``row_groups``, whose first row is ``first_row`` of
        the file, for messages) as chunks of at most ``chunk_samples``."""
        row = first_row
        try:
            for rb in self.file.iter_batches(batch_size=chunk_samples, row_groups=row_groups,
                                             columns=self.columns, use_threads=False):
                yield self.decode(rb, row)
                row += rb.num_rows
        except (OSError, self.pa.ArrowException) as e:
            raise DatasetError(f"cannot read: {e}", file=self.path, where=f"row {row}") from None

    def decode(self, rb, row: int = 0) -> Chunk:
        """One record batch of this file (read with ``columns``) as a Chunk; ``row``: the
        file's row number of its first row, for messages."""
        lay, path = self.layout, self.path
        n = rb.num_rows
        has_labels = bool(self.meta["labels"])
        values = self._floats(rb, self.meta["labels"] + self.meta["conts"], row)
        want = (lay.label_dim if has_labels else 0) + lay.dense_dim
        if values.shape[1] != want:
            raise DatasetError(f"label and dense columns hold {values.shape[1]} values per row, "
                               f"the model takes {want} ({lay.label_dim if has_labels else 0} "
                               f"labels + {lay.dense_dim} dense)", file=path, where=f"row {row}")
        split = lay.label_dim if has_labels else 0
        labels = values[:, :split] if has_labels else None
        dense = np.ascontiguousarray(values[:, split:])
        keys, s = [], 0
        for inp in lay.sparse:
            out = np.full((n, inp.slot_num, inp.max_nnz), lay.padding_key, np.int64)
            for j in range(inp.slot_num):
                i = self.meta["cats"][s]
                col = self._column(rb, i, row)
                self._fill(out[:, j, :], col, inp, row, i, int(self.dataset.offsets[s]))
                s += 1
            keys.append(out)
        return Chunk(labels, dense, keys)

    def _column(self, rb, i: int, row: int):
        """Schema column ``i`` of the file, from the record batch; nulls are refused."""
        at = rb.schema.get_field_index(self._names[i])
        if at < 0:
            raise DatasetError(f"the record batch has no column {self._names[i]!r}",
                               file=self.path, where=f"column {i}")
        col = rb.column(at)
        if col.null_count:
            r = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise DatasetError("missing value", file=self.path,
                               where=f"row {row + r}, column {i}")
        return col

    def _floats(self, rb, indices: list[int], row: int) -> np.ndarray:
        n = rb.num_rows
        parts = []
        for i in indices:
            col = self._column(rb, i, row)
            if _is_list(self.pa, col.type):
                lengths = _list_lengths(col)
                if n and (lengths != lengths[0]).any():
                    r = int(np.flatnonzero(lengths != lengths[0])[0])
                    raise DatasetError("list lengths differ between rows", file=self.path,
                                       where=f"row {row + r}, column {i}")
                width = int(lengths[0]) if n else 0
                parts.append(_list_values(col).reshape(n, width))
            else:
                parts.append(col.to_numpy(zero_copy_only=False).reshape(n, 1))
        if not parts:
            return np.zeros((n, 0), np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def _fill(self, out: np.ndarray, col, inp, row: int, i: int, offset: int) -> None:
        pad = self.layout.padding_key
        if _is_list(self.pa, col.type):
            counts = _list_lengths(col)
            over = np.flatnonzero(counts > inp.max_nnz)
            if over.size:
                r = int(over[0])
                raise DatasetError(f"{int(counts[r])} keys, the model takes at most "
                                   f"{inp.max_nnz} per slot of {inp.name}", file=self.path,
                                   where=f"row {row + r}, column {i}")
            values = _as_keys(_list_values(col)) + offset
            rows = np.repeat(np.arange(counts.size), counts)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            pos = np.arange(values.size) - np.repeat(starts, counts)
            out[rows, pos] = values
        else:
            out[:, 0] = _as_keys(col.to_numpy(zero_copy_only=False)) + offset
            if out.shape[1] > 1:
                out[:, 1:] = pad


def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _as_keys(values: np.ndarray) -> np.ndarray:
    """Key column values as the model's int64: 32-bit columns are the run's uint32 keys
    (zero-extended, int32 ones too), 64-bit ones keep their bit pattern."""
    if values.dtype.itemsize == 4:
        return values.view(np.uint32).astype(np.int64)
    return values.view(np.int64) if values.dtype == np.uint64 else values.astype(np.int64)


def _list_lengths(col) -> np.ndarray:
    import pyarrow.compute as pc
    return np.asarray(pc.list_value_length(col).to_numpy(zero_copy_only=False), np.int64)


def _list_values(col) -> np.ndarray:
    return col.flatten().to_numpy(zero_copy_only=False)


def read_parquet(source, layout: DataLayout, chunk_samples: int) -> Iterator[Chunk]:
    yield from ParquetReader(source, layout).chunks(chunk_samples)

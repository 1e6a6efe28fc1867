"""What a dataset must hold for one model: labels, dense features and key slots.

The split of a sample into labels, dense values and slots is not in HugeCTR's data files;
it comes from the model (the graph JSON's Data block, or the ONNX metadata written at
convert). So does the key width of Norm and RawAsync files (the training run's key type).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import UsageError

KEY_TYPES = ("I32", "I64")


@dataclass(frozen=True)
class SparseSlots:
    name: str  # the model's key input
    slot_num: int
    nnz_per_slot: tuple[int, ...]
    is_fixed_length: bool = True

    @property
    def max_nnz(self) -> int:
        return max(self.nnz_per_slot) if self.nnz_per_slot else 1


@dataclass(frozen=True)
class DataLayout:
    """Label names and dims in the model's (sorted) order, the dense input, the key inputs.

    ``key_type``: width of the keys stored in Norm/RawAsync files and of Parquet key
    columns. ``padding_key`` fills absent entries of multi-hot slots (the model's own).
    ``slot_size_array``: Parquet key offsets (HUGECTR_FORMATS 6.4); empty means none."""

    label_names: tuple[str, ...]
    label_dims: tuple[int, ...]
    dense_name: str
    dense_dim: int
    sparse: tuple[SparseSlots, ...] = ()
    key_type: str = "I64"
    padding_key: int = -1
    slot_size_array: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.key_type not in KEY_TYPES:
            raise UsageError(f"key type must be one of {list(KEY_TYPES)}, found {self.key_type!r}")

    @property
    def label_dim(self) -> int:
        return int(sum(self.label_dims))

    @property
    def slot_num(self) -> int:
        return int(sum(s.slot_num for s in self.sparse))

    @property
    def key_bytes(self) -> int:
        return 4 if self.key_type == "I32" else 8

    def with_options(self, *, key_type: str | None = None, slot_size_array=None,
                     padding_key: int | None = None) -> "DataLayout":
        """A copy with the given overrides (None keeps the model's value)."""
        changes = {}
        if key_type is not None:
            changes["key_type"] = key_type
        if slot_size_array is not None:
            changes["slot_size_array"] = tuple(int(v) for v in slot_size_array)
        if padding_key is not None:
            changes["padding_key"] = int(padding_key)
        return replace(self, **changes)

    def key_offsets(self) -> np.ndarray:
        """Per categorical column (slot, in Data order): the Parquet key offset. Columns past
        the end of ``slot_size_array`` get 0, as in HugeCTR's reader."""
        out = np.zeros(self.slot_num, np.int64)
        sizes = np.asarray(self.slot_size_array[:self.slot_num], np.int64)
        if sizes.size:
            out[:sizes.size] = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return out

    def split_labels(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """[n, label_dim] -> one [n, dim] float32 array per label name."""
        ends = np.cumsum(self.label_dims)
        return {name: labels[:, e - d:e] for name, d, e in
                zip(self.label_names, self.label_dims, ends)}

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_data_input(cls, data, *, key_type: str = "I64", padding_key: int | None = -1,
                        slot_size_array=()) -> "DataLayout":
        """From the IR's ``DataInput`` (graph JSON's Data block)."""
        return cls(tuple(data.label_names), tuple(int(d) for d in data.label_dims),
                   data.dense_name, int(data.dense_dim),
                   tuple(SparseSlots(s.name, int(s.slot_num), tuple(int(n) for n in s.nnz_per_slot),
                                     bool(s.is_fixed_length)) for s in data.sparse),
                   key_type, -1 if padding_key is None else int(padding_key),
                   tuple(int(v) for v in (slot_size_array or ())))

    @classmethod
    def from_dict(cls, d: dict) -> "DataLayout":
        """From the ``hugectr2onnx.data`` metadata (docs/metadata.md)."""
        pad = d.get("padding_key")
        return cls(tuple(l["name"] for l in d["labels"]), tuple(int(l["dim"]) for l in d["labels"]),
                   d["dense"]["name"], int(d["dense"]["dim"]),
                   tuple(SparseSlots(s["name"], int(s["slot_num"]),
                                     tuple(int(n) for n in s["nnz_per_slot"]),
                                     bool(s.get("is_fixed_length", True))) for s in d["sparse"]),
                   d.get("key_type", "I64"), -1 if pad is None else int(pad),
                   tuple(int(v) for v in d.get("slot_size_array") or ()))

    @classmethod
    def from_onnx(cls, model) -> "DataLayout":
        """From a converted model (path or proto): its ``hugectr2onnx.data`` metadata, or
        read off its inputs and outputs when it has none (onnx_backend/metadata.py)."""
        from ..onnx_backend.metadata import layout_from_model
        return layout_from_model(model)[0]

    def to_dict(self) -> dict:
        return {"labels": [{"name": n, "dim": d} for n, d in zip(self.label_names, self.label_dims)],
                "dense": {"name": self.dense_name, "dim": self.dense_dim},
                "sparse": [{"name": s.name, "slot_num": s.slot_num,
                            "nnz_per_slot": list(s.nnz_per_slot),
                            "is_fixed_length": s.is_fixed_length} for s in self.sparse],
                "key_type": self.key_type, "padding_key": self.padding_key,
                "slot_size_array": list(self.slot_size_array)}

"""The one intermediate representation of a HugeCTR model.

Readers fill it from HugeCTR files; backends (ONNX, the numpy reference) consume it.
Shapes always include the leading (batch) dimension, as HugeCTR's do: it is a ``Batch``
(a rational multiple of the batch size) or a fixed int when a layer pins it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Union

import numpy as np


@dataclass(frozen=True)
class Batch:
    """A leading dimension equal to ``scale`` x the batch size."""

    scale: Fraction = Fraction(1)

    def __mul__(self, k) -> "Batch":
        return Batch(self.scale * Fraction(k))

    def __truediv__(self, k) -> "Batch":
        return Batch(self.scale / Fraction(k))

    def __str__(self) -> str:
        return "B" if self.scale == 1 else f"{self.scale}*B"

    def concrete(self, batch: int) -> int:
        value = self.scale * batch
        if value.denominator != 1:
            raise ValueError(f"{self} is not whole for batch {batch}")
        return int(value)


Dim = Union[Batch, int]
Shape = tuple  # (Dim, int, int, ...)
B = Batch()


def fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def numel_per_sample(shape: Shape) -> int:
    n = 1
    for d in shape[1:]:
        n *= int(d)
    return n


def concrete_shape(shape: Shape, batch: int) -> tuple[int, ...]:
    first = shape[0].concrete(batch) if isinstance(shape[0], Batch) else int(shape[0])
    return (first,) + tuple(int(d) for d in shape[1:])


@dataclass
class SparseInput:
    name: str
    slot_num: int
    nnz_per_slot: list[int]
    is_fixed_length: bool = True

    @property
    def max_nnz(self) -> int:
        return max(self.nnz_per_slot) if self.nnz_per_slot else 1


@dataclass
class DataInput:
    label_names: list[str]
    label_dims: list[int]
    dense_name: str
    dense_dim: int
    sparse: list[SparseInput] = field(default_factory=list)

    def sparse_input(self, name: str) -> SparseInput | None:
        return next((s for s in self.sparse if s.name == name), None)


@dataclass
class EmbeddingTable:
    """Trained rows of one embedding. Arrays may be memory maps of the HugeCTR files."""

    keys: np.ndarray  # int64 [K]
    vectors: np.ndarray  # float32 [K, vec]
    slot_ids: np.ndarray | None = None  # uint64 [K], Localized only
    source: str = ""

    @property
    def num_keys(self) -> int:
        return int(self.keys.shape[0])


@dataclass
class Embedding:
    index: int
    type: str
    bottom: str
    top: str
    vec_size: int
    combiner: str  # "sum" | "mean" | "concat" (embedding collections: keys side by side)
    slot_num: int
    max_nnz: int
    max_vocabulary_size_global: int = 0
    workspace_size_per_gpu_in_mb: int = 0
    optimizer: str = ""
    update_type: str = ""
    slot_size_array: list[int] = field(default_factory=list)
    solver_gpus: int | None = None  # GPU count of a hand-written config's solver.gpu list
    table: EmbeddingTable | None = None
    table_name: str = ""  # embedding collections: lookups may share one named table

    @property
    def localized(self) -> bool:
        return self.type.startswith("Localized")

    @property
    def out_width(self) -> int:
        """Floats per slot: ``concat`` puts the slot's max_nnz vectors side by side."""
        return self.vec_size * (self.max_nnz if self.combiner == "concat" else 1)

    @property
    def out_shape(self) -> Shape:
        return (B, self.slot_num, self.out_width)


@dataclass
class WeightSpec:
    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n


@dataclass
class Layer:
    index: int  # position in the JSON "layers" array
    type: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    in_shapes: list[Shape] = field(default_factory=list)
    out_shapes: list[Shape] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"layer #{self.index} {self.type} (top {self.tops[0] if self.tops else '?'})"


@dataclass
class Output:
    """A model prediction: the inference transform of a loss layer, named after its label;
    in a graph without loss layers (an inference graph), a top no layer reads."""

    name: str
    shape: Shape


@dataclass
class Graph:
    data: DataInput
    embeddings: list[Embedding]
    layers: list[Layer]
    shapes: dict[str, Shape]
    outputs: list[Output] = field(default_factory=list)
    model_name: str = ""
    source: str = ""
    inference: dict = field(default_factory=dict)  # the JSON's "inference" block, if any

    def producer_of(self, tensor: str):
        for emb in self.embeddings:
            if emb.top == tensor:
                return emb
        for layer in self.layers:
            if tensor in layer.tops:
                return layer
        return None

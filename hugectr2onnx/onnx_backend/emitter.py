"""A small typed builder for ONNX graphs that handlers emit into.

Handlers name their outputs after HugeCTR tensors; intermediates get unique names
derived from a hint. Opset differences (axes as attribute or input) live here only.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from onnx import NodeProto, helper

from ..ir import Layer
from ..options import DEFAULT_OPSET

MIN_OPSET = 13
MAX_OPSET = 21
ML_OPSET = 2  # ai.onnx.ml; raised by lookups that need more


class OnnxEmitter:
    def __init__(self, opset: int = DEFAULT_OPSET):
        self.opset = opset
        self.ml_opset = 0
        self.nodes: list[NodeProto] = []
        self.initializers: dict[str, Any] = {}  # name -> ndarray or lazy tensor
        self._names: set[str] = set()
        self._consts: dict[tuple, str] = {}
        # HugeCTR tensor names, emitted or not yet: generated names must not take them
        self.taken: set[str] = set()
        self._next: dict[str, int] = {}  # per hint, the next suffix to try
        self.shared: dict[int, tuple] = {}  # id(array or table) -> (it, what was emitted)

    # names ---------------------------------------------------------------
    def reserve(self, name: str) -> str:
        self._names.add(name)
        return name

    def defined(self, name: str) -> bool:
        """True once ``name`` is a graph input or some node's output."""
        return name in self._names

    def fresh(self, hint: str) -> str:
        name, k = hint, self._next.get(hint, 1)
        while name in self._names or name in self.taken:
            name = f"{hint}_{k}"
            k += 1
        self._next[hint] = k
        self._names.add(name)
        return name

    # nodes ---------------------------------------------------------------
    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str] | str | int | None = None,
             *, domain: str = "", hint: str | None = None, **attrs) -> Any:
        """Add a node; returns its output name (or list of names when several)."""
        if outputs is None:
            outputs = 1
        if isinstance(outputs, int):
            base = hint or op.lower()
            outs = [self.fresh(base) for _ in range(outputs)]
        elif isinstance(outputs, str):
            outs = [self.reserve(outputs)]
        else:
            outs = [self.reserve(o) for o in outputs]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op, list(inputs), outs,
                                           name=self.fresh(f"{op}:{outs[0]}"),
                                           domain=domain or None, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # tensors -------------------------------------------------------------
    def const(self, value, dtype=None, hint: str = "const") -> str:
        """A small constant as an initializer, shared between identical uses."""
        arr = np.asarray(value, dtype=dtype)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.add_initializer(hint, arr)
        return self._consts[key]

    def ints(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint="ints")

    def add_initializer(self, hint: str, array) -> str:
        name = self.fresh(hint)
        self.initializers[name] = array
        return name

    def weight(self, layer: Layer, key: str, array=None) -> str:
        """The layer's dense-file tensor ``key`` (or a transformed ``array``) as an initializer."""
        arr = layer.weights[key] if array is None else array
        return self.add_initializer(f"{layer.tops[0]}.{key}",
                                    np.ascontiguousarray(arr, dtype=np.float32))

    # opset-dependent helpers ---------------------------------------------
    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: bool = True,
               out: str | None = None) -> str:
        axes_as_input = op == "ReduceSum" and self.opset >= 13 or self.opset >= 18
        if axes_as_input:
            return self.node(op, [x, self.ints(axes)], out, keepdims=int(keepdims), hint=op)
        return self.node(op, [x], out, axes=list(axes), keepdims=int(keepdims), hint=op)

    def unsqueeze(self, x: str, axes: Sequence[int], out: str | None = None) -> str:
        return self.node("Unsqueeze", [x, self.ints(axes)], out, hint="unsq")

    def squeeze(self, x: str, axes: Sequence[int], out: str | None = None) -> str:
        return self.node("Squeeze", [x, self.ints(axes)], out, hint="sq")

    def reshape(self, x: str, shape: Sequence[int], out: str | None = None) -> str:
        return self.node("Reshape", [x, self.ints(shape)], out, hint="reshape")

    def slice(self, x: str, starts, ends, axes, out: str | None = None) -> str:
        return self.node("Slice", [x, self.ints(starts), self.ints(ends), self.ints(axes)], out,
                         hint="slice")

    def identity(self, x: str, out: str) -> str:
        return self.node("Identity", [x], out)

    def matmul_bias(self, x: str, w: str, b: str | None, rank: int, out: str | None = None) -> str:
        """``x·W (+ b)`` over the last axis; Gemm for 2-D inputs, which ORT fuses best."""
        if rank == 2:
            ins = [x, w] + ([b] if b else [])
            return self.node("Gemm", ins, out, hint="gemm")
        y = self.node("MatMul", [x, w], None if b else out, hint="matmul")
        return self.node("Add", [y, b], out, hint="bias") if b else y

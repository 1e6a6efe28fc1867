"""The layer handler contract and the registry of handlers.

A handler declares everything about one HugeCTR layer family: JSON parsing, output
shapes, weight layout in the dense file, a numpy reference written from the spec, and
its ONNX emission. Adding a layer means adding one module to this package.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from typing import Any

import numpy as np

from ..ir import Layer, Shape, WeightSpec, fmt_shape

_MISSING = object()
MAX_DIM = 1 << 31  # no real layer dimension gets near this; larger values are corrupt


class LayerError(Exception):
    """Raised by handlers; the reader adds the file and the layer's position."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


class Params:
    """Typed access to one JSON block, naming the field on every error."""

    def __init__(self, block: dict[str, Any]):
        self.block = block

    def _lookup(self, path: str):
        node: Any = self.block
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def has(self, path: str) -> bool:
        return self._lookup(path) is not _MISSING

    def value(self, path: str, default=_MISSING):
        v = self._lookup(path)
        if v is _MISSING:
            if default is _MISSING:
                raise LayerError(f"missing field '{path}'", path)
            return default
        return v

    def int(self, path: str, default=_MISSING, *, lo: int = 0, hi: int = MAX_DIM) -> int:
        v = self.value(path, default)
        if v is default and default is not _MISSING:
            return v
        return check_int(v, path, lo, hi)

    def float(self, path: str, default=_MISSING) -> float:
        v = self.value(path, default)
        if v is default and default is not _MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise LayerError(f"field '{path}' must be a finite number, found {v!r}", path)
        return float(v)

    def bool(self, path: str, default=_MISSING) -> bool:
        v = self.value(path, default)
        if not isinstance(v, bool):
            raise LayerError(f"field '{path}' must be true or false, found {v!r}", path)
        return v

    def str(self, path: str, default=_MISSING, choices: tuple[str, ...] | None = None) -> str:
        v = self.value(path, default)
        if not isinstance(v, str):
            raise LayerError(f"field '{path}' must be a string, found {v!r}", path)
        if choices is not None and v not in choices:
            raise LayerError(f"field '{path}' must be one of {list(choices)}, found {v!r}", path)
        return v

    def int_list(self, path: str, default=_MISSING, *, lo: int = 0, hi: int = MAX_DIM,
                 min_len: int = 0) -> list[int]:
        v = self.value(path, default)
        if not isinstance(v, list) or len(v) < min_len:
            raise LayerError(f"field '{path}' must be a list of at least {min_len} integers, "
                             f"found {v!r:.80}", path)
        return [check_int(x, f"{path}[{i}]", lo, hi) for i, x in enumerate(v)]

    def float_list(self, path: str, default=_MISSING) -> list[float]:
        v = self.value(path, default)
        if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                          for x in v):
            raise LayerError(f"field '{path}' must be a list of numbers, found {v!r:.80}", path)
        return [float(x) for x in v]


def check_int(v, path: str, lo: int = 0, hi: int = MAX_DIM) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise LayerError(f"field '{path}' must be an integer, found {v!r:.80}", path)
    if not lo <= v <= hi:
        raise LayerError(f"field '{path}' = {v} is outside [{lo}, {hi}]", path)
    return v


def require(cond: bool, message: str, field: str | None = None) -> None:
    if not cond:
        raise LayerError(message, field)


def same_shapes(layer: Layer) -> Shape:
    first = layer.in_shapes[0]
    for s in layer.in_shapes[1:]:
        require(tuple(s) == tuple(first),
                f"inputs must have identical shapes, found {', '.join(map(fmt_shape, layer.in_shapes))}")
    return first


class LayerHandler:
    """Base class: override what the layer family needs."""

    types: tuple[str, ...] = ()
    bottoms: tuple[int, int] = (1, 1)  # min, max number of bottom tensors
    tops: tuple[int, int] = (1, 1)
    is_loss = False  # loss layers produce the model's predictions
    splits_labels = False  # may read a label (fan-out Slices of multi-task labels)
    value_tops: int | None = None  # how many leading tops carry values (None: all)

    def parse(self, p: Params, layer: Layer) -> dict[str, Any]:
        """Typed hyper-parameters from the JSON block."""
        return {}

    def infer(self, layer: Layer) -> list[Shape]:
        """Output shapes from ``layer.in_shapes`` and ``layer.params``; validates inputs."""
        return [layer.in_shapes[0]]

    def weight_specs(self, layer: Layer) -> list[WeightSpec]:
        """Trainable tensors, in dense-file order."""
        return []

    def unresolved(self, layer: Layer) -> bool:
        """True while a layout parameter must still be recovered from the file size."""
        return False

    def resolve(self, layer: Layer, n_floats: int) -> None:
        """Fix the unresolved parameter so the layer's weights take ``n_floats`` floats."""
        raise LayerError("layout cannot be recovered from the dense file size")

    def ntp_specs(self, layer: Layer) -> list[WeightSpec]:
        """Non-trainable tensors read from the ntp JSON (BatchNorm only)."""
        return []

    def reference(self, layer: Layer, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(f"no numpy reference for {layer.type}")

    def to_onnx(self, layer: Layer, g) -> None:
        raise NotImplementedError(f"no ONNX emission for {layer.type}")


class Registry:
    """Maps HugeCTR layer type strings to handlers."""

    def __init__(self, handlers: list[LayerHandler] = ()):
        self._by_type: dict[str, LayerHandler] = {}
        for h in handlers:
            self.register(h)

    def register(self, handler: LayerHandler) -> None:
        for t in handler.types:
            if t in self._by_type:
                raise ValueError(f"two handlers for layer type {t}")
            self._by_type[t] = handler

    def get(self, layer_type: str) -> LayerHandler | None:
        return self._by_type.get(layer_type)

    @property
    def types(self) -> list[str]:
        return sorted(self._by_type)

    @classmethod
    def discover(cls) -> "Registry":
        """Every module of this package that defines ``HANDLERS``."""
        from . import __path__ as pkg_path, __name__ as pkg_name

        handlers: list[LayerHandler] = []
        for info in sorted(pkgutil.iter_modules(pkg_path), key=lambda m: m.name):
            if info.name == "base":
                continue
            module = importlib.import_module(f"{pkg_name}.{info.name}")
            handlers.extend(getattr(module, "HANDLERS", []))
        return cls(handlers)


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = Registry.discover()
    return _default

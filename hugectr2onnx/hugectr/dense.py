"""Reader of the dense weight file: headless float32 tensors in layer order (FORMATS §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DenseModelError, GraphStructureError
from ..ir import Graph, Layer, WeightSpec
from ..layers.base import MAX_DIM, LayerError, Registry, default_registry
from .files import existing_file, map_array
from .graph_json import HOSTILE_INPUT_ERRORS, _describe


@dataclass
class Placement:
    layer: Layer
    spec: WeightSpec
    offset: int  # in bytes

    @property
    def end(self) -> int:
        return self.offset + 4 * self.spec.size


def plan_layout(graph: Graph, file_bytes: int, file: str = "",
                registry: Registry | None = None) -> list[Placement]:
    """Where every trainable tensor lies; recovers one unknown layout parameter from the size."""
    registry = registry or default_registry()
    in_file_order = sorted(graph.layers, key=lambda l: l.index)
    unresolved = [l for l in in_file_order if registry.get(l.type).unresolved(l)]
    if len(unresolved) > 1:
        names = ", ".join(l.label for l in unresolved)
        raise DenseModelError(f"cannot recover the layout of several layers from one file size "
                              f"({names}); pass projection_dims", file=file)
    if unresolved:
        known = sum(s.size for l in in_file_order if l not in unresolved
                    for s in _specs(l, registry, file))
        layer = unresolved[0]
        budget = file_bytes // 4 - known
        try:
            registry.get(layer.type).resolve(layer, budget)
        except (LayerError,) + HOSTILE_INPUT_ERRORS as e:
            raise DenseModelError(f"{layer.label}: {_describe(e)[0]} (file has {file_bytes} "
                                  f"bytes, other layers take {4 * known})", file=file,
                                  where=f"layers[{layer.index}]") from e
    placements: list[Placement] = []
    offset = 0
    for layer in in_file_order:
        for spec in _specs(layer, registry, file):
            placements.append(Placement(layer, spec, offset))
            offset += 4 * spec.size
    if offset != file_bytes:
        raise DenseModelError(_mismatch(placements, offset, file_bytes), file=file,
                              where=f"byte offset {min(offset, file_bytes)}")
    return placements


def _specs(layer: Layer, registry: Registry, file: str) -> list[WeightSpec]:
    """The layer's weight tensors, checked: a corrupt graph must not yield absurd shapes."""
    where = f"layers[{layer.index}] ({layer.type})"
    try:
        specs = list(registry.get(layer.type).weight_specs(layer))
        for spec in specs:
            spec.shape = tuple(int(d) for d in spec.shape)
    except (LayerError,) + HOSTILE_INPUT_ERRORS as e:
        raise GraphStructureError(f"no weight layout: {_describe(e)[0]}", file=file,
                                  where=where) from e
    for spec in specs:
        if not all(0 <= d <= MAX_DIM for d in spec.shape):
            raise GraphStructureError(f"weight {spec.name} would have shape {list(spec.shape)}",
                                      file=file, where=where)
    return specs


def _mismatch(placements: list[Placement], needed: int, have: int) -> str:
    if have < needed:
        p = next(p for p in placements if p.end > have)
        return (f"file is {have} bytes but the graph needs {needed}: it ends inside "
                f"{p.layer.label} weight {p.spec.name} {list(p.spec.shape)}, which spans bytes "
                f"{p.offset}-{p.end} (truncated, or a dense file of another model)")
    last = placements[-1] if placements else None
    after = f" after {last.layer.label} weight {last.spec.name}" if last else ""
    return (f"file is {have} bytes but the graph needs {needed}: {have - needed} extra bytes "
            f"start at offset {needed}{after} (a dense file of another model?)")


def load_dense(graph: Graph, path, registry: Registry | None = None) -> list[Placement]:
    """Attach every layer's trainable weights from the dense file (float32, copied)."""
    p = existing_file(path, "dense model")
    size = p.stat().st_size
    placements = plan_layout(graph, size, str(p), registry)
    if size == 0:
        return placements
    data = map_array(p, "<f4", (size // 4,), "dense model")
    for pl in placements:
        start = pl.offset // 4
        arr = np.array(data[start:start + pl.spec.size], dtype=np.float32)
        pl.layer.weights[pl.spec.name] = arr.reshape(pl.spec.shape)
    del data
    return placements

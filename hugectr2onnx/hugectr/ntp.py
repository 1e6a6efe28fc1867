"""Reader of the non-trainable-parameters JSON (BatchNorm running statistics, FORMATS §4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import NtpError
from ..ir import Graph
from ..layers.base import Registry, default_registry
from .files import read_text


def beside(dense_path) -> Path | None:
    """HugeCTR's ntp file of ``dense_path`` (its name plus '.ntp.json'), if it exists."""
    if dense_path is None:
        return None
    candidate = Path(f"{dense_path}.ntp.json")
    return candidate if candidate.is_file() else None


def load_ntp(graph: Graph, path, registry: Registry | None = None, *,
             dense_path=None) -> str | None:
    """Fill BatchNorm statistics; returns the file read. ``path`` None: the file beside
    ``dense_path`` when the graph needs one ("" means no file, as in NVIDIA's tests)."""
    registry = registry or default_registry()
    needing = [l for l in sorted(graph.layers, key=lambda l: l.index)
               if registry.get(l.type).ntp_specs(l)]
    if path is None and needing:
        path = beside(dense_path)
    if path is None or path == "":  # NVIDIA's own tests pass "" for "no ntp file"
        if needing:
            raise NtpError(f"{needing[0].label} needs running statistics: pass ntp_file "
                           f"(the dense file name plus '.ntp.json', not found beside it)",
                           file=graph.source, where=f"layers[{needing[0].index}]")
        return None
    file = str(path)
    try:
        doc = json.loads(read_text(path, "ntp file"))
    except json.JSONDecodeError as e:
        raise NtpError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}",
                       file=file, where=f"byte offset {e.pos}")
    except RecursionError:
        raise NtpError("JSON nested too deeply", file=file)
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise NtpError(f"malformed JSON: {e}", file=file)
    entries = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise NtpError("expected an object with a 'layers' list", file=file, where="layers")
    if len(entries) != len(needing):
        raise NtpError(f"{len(entries)} entries, but the graph has {len(needing)} layers with "
                       f"running statistics", file=file, where="layers")
    for k, (entry, layer) in enumerate(zip(entries, needing)):
        where = f"layers[{k}]"
        if not isinstance(entry, dict) or entry.get("type") != layer.type:
            found = entry.get("type") if isinstance(entry, dict) else entry
            raise NtpError(f"expected a {layer.type} entry for {layer.label}, found {found!r:.60}",
                           file=file, where=f"{where}.type")
        for spec in registry.get(layer.type).ntp_specs(layer):
            values = entry.get(spec.name)
            if not isinstance(values, list) or any(
                    isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
                raise NtpError(f"'{spec.name}' must be a list of numbers", file=file,
                               where=f"{where}.{spec.name}")
            if len(values) < spec.size:
                raise NtpError(f"'{spec.name}' has {len(values)} values, {layer.label} needs "
                               f"{spec.size}", file=file, where=f"{where}.{spec.name}")
            # fp16 runs write 2*C values of which the first C are valid (FORMATS §4).
            # Values beyond float32 become inf, which the finiteness check reports.
            with np.errstate(over="ignore"):
                arr = _floats(values[:spec.size]).astype(np.float32)
            layer.weights[spec.name] = arr.reshape(spec.shape)
    return file


def _floats(values: list) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer beyond float64: rare, so only then one by one
        return np.asarray([v if isinstance(v, float) or abs(v) < 1 << 1000
                           else math.inf if v > 0 else -math.inf for v in values], dtype=np.float64)

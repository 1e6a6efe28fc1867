"""Assemble the IR into an ONNX model and save it atomically, with external data if big."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..atomic import check_target, remove, temp_file
from ..errors import OutputError, UsageError
from ..ir import Batch, Graph, Shape
from ..layers.base import Registry, default_registry
from ..progress import progress_bar
from .embedding import EmbeddingOptions, emit_embedding
from .emitter import MAX_OPSET, MIN_OPSET, OnnxEmitter
from .external import DataFile, LazyTensor
from .staging import StagedTables

MIN_IR_VERSION = 8  # the lowest IR that older runtimes load; raised when an opset needs more
EXTERNAL_MODES = ("auto", "always", "never")
AUTO_THRESHOLD = int(1.8e9)  # "auto" goes external above this many bytes
PROTOBUF_LIMIT = (1 << 31) - 1  # protobuf cannot serialize a message larger than this
EXTERNAL_MIN_BYTES = 1024  # smaller tensors stay inline even in external mode


@dataclass
class ExportResult:
    """The model as a graph without initializers plus its tensors, still unserialized.

    ``tensors`` maps initializer names to numpy arrays or LazyTensors (tables streamed
    from the HugeCTR files), so nothing big is copied before ``save_model`` writes it."""

    skeleton: onnx.ModelProto
    tensors: dict[str, Any] = field(default_factory=dict)
    embeddings: list[dict] = field(default_factory=list)

    @property
    def model(self) -> onnx.ModelProto:
        """The whole model in memory (small models only)."""
        return _with_initializers(self.skeleton, self.tensors, {})

    def estimated_bytes(self) -> int:
        return self.skeleton.ByteSize() + sum(_nbytes(t) + 64 for t in self.tensors.values())

    @classmethod
    def from_proto(cls, model: onnx.ModelProto) -> "ExportResult":
        skeleton = onnx.ModelProto()
        skeleton.CopyFrom(model)
        del skeleton.graph.initializer[:]
        return cls(skeleton, {t.name: numpy_helper.to_array(t) for t in model.graph.initializer})


def _nbytes(tensor) -> int:
    return int(tensor.nbytes) if isinstance(tensor, LazyTensor) else int(np.asarray(tensor).nbytes)


def _with_initializers(skeleton, tensors: dict, external: dict) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(skeleton)
    model.graph.initializer.extend(_initializers(tensors, external))
    return model


def _initializers(tensors: dict, external: dict) -> list[TensorProto]:
    return [external[name] if name in external else numpy_helper.from_array(np.asarray(t), name)
            for name, t in tensors.items()]


def _serialize(skeleton: onnx.ModelProto, tensors: dict, external: dict) -> bytes:
    """The model's bytes without copying the skeleton (lookup attributes can be large)."""
    skeleton.graph.initializer.extend(_initializers(tensors, external))
    try:
        return skeleton.SerializeToString()
    finally:
        del skeleton.graph.initializer[:]


def _dims(shape: Shape) -> list:
    first = shape[0]
    if isinstance(first, Batch):
        d0 = "batch" if first.scale == 1 else f"batch_x{str(first.scale).replace('/', '_')}"
    else:
        d0 = int(first)
    return [d0] + [int(d) for d in shape[1:]]


def build_model(graph: Graph, *, convert_embedding: bool, opset: int = 17,
                graph_name: str = "hugectr", emb_opts: EmbeddingOptions | list | None = None,
                registry: Registry | None = None) -> ExportResult:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(f"opset must be between {MIN_OPSET} and {MAX_OPSET}, found {opset}")
    registry = registry or default_registry()
    g = OnnxEmitter(opset)
    g.taken = set(graph.shapes)
    data = graph.data
    inputs = [helper.make_tensor_value_info(data.dense_name, TensorProto.FLOAT,
                                            ["batch", data.dense_dim])]
    g.reserve(data.dense_name)
    emb_info = []
    for k, emb in enumerate(graph.embeddings):
        if convert_embedding:
            sp = data.sparse_input(emb.bottom)
            if not g.defined(emb.bottom):
                inputs.append(helper.make_tensor_value_info(
                    emb.bottom, TensorProto.INT64, ["batch", sp.slot_num, sp.max_nnz]))
                g.reserve(emb.bottom)
            opts = emb_opts[k] if isinstance(emb_opts, list) else (emb_opts or EmbeddingOptions())
            emb_info.append(emit_embedding(g, emb, opts))
        else:
            inputs.append(helper.make_tensor_value_info(emb.top, TensorProto.FLOAT,
                                                        _dims(emb.out_shape)))
            g.reserve(emb.top)
    for layer in graph.layers:
        registry.get(layer.type).to_onnx(layer, g)
    outputs = [helper.make_tensor_value_info(o.name, TensorProto.FLOAT, _dims(o.shape))
               for o in graph.outputs]
    onnx_graph = helper.make_graph(g.nodes, graph_name, inputs, outputs)
    opsets = [helper.make_opsetid("", opset)]
    if g.ml_opset:
        opsets.append(helper.make_opsetid("ai.onnx.ml", g.ml_opset))
    ir_version = max(MIN_IR_VERSION, helper.find_min_ir_version_for(opsets))
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="hugectr2onnx",
                              ir_version=ir_version)
    return ExportResult(model, dict(g.initializers), emb_info)


def check_external_mode(external_data: str) -> None:
    if external_data not in EXTERNAL_MODES:
        raise UsageError(f"external_data must be one of {list(EXTERNAL_MODES)}, "
                         f"found {external_data!r}")


def stage_tables(path, tables: list, *, progress: bool | None = None,
                 kernel_copy: bool = True) -> StagedTables:
    """Start copying embedding tables (arrays of vectors, usually memory maps) into the
    temporary data file of ``path``; pass the result to ``save_model(staged=...)``."""
    path = Path(os.fspath(path))
    directory = check_target(path)
    location = data_location(directory, path.name)
    tmp = temp_file(directory, location)
    try:
        return StagedTables(tmp, location, tables, progress, kernel_copy)
    except BaseException:
        remove([tmp])
        raise


def save_model(model, path, *, external_data: str = "auto", threshold: int = AUTO_THRESHOLD,
               progress: bool | None = None, kernel_copy: bool = True,
               staged: StagedTables | None = None) -> list[Path]:
    """Write ``model`` (ExportResult or ModelProto) to ``path``; returns the files written.

    Tensors go to a data file beside it with ``external_data="always"``, or with "auto"
    when the model exceeds ``threshold`` bytes; tables in ``staged`` are already there.
    Everything is written to temporary files in the target directory and renamed at the
    end; on any error or Ctrl-C they are removed.

    The pair is replaced atomically: the data file is ``<name>.data``, or
    ``<name>.<random>.data`` when that name is taken (by the pair being replaced), so the
    new data never overwrites the old; the ``.onnx`` is renamed last, which switches to the
    new pair in one step, and only then are the old data files removed. A failure at any
    point leaves either the old pair or the new one.
    """
    result = model if isinstance(model, ExportResult) else ExportResult.from_proto(model)
    check_external_mode(external_data)
    path = Path(os.fspath(path))
    directory = check_target(path)
    size = result.estimated_bytes()
    use_external = (staged is not None or external_data == "always"
                    or (external_data == "auto" and size > threshold))
    if not use_external and size > PROTOBUF_LIMIT:
        raise UsageError(f"the model needs about {size / 2**30:.1f} GiB, more than the 2 GiB a "
                         "single protobuf file can hold; use external_data='auto' or 'always'")
    data_path = None
    big = {n: t for n, t in result.tensors.items()
           if use_external and _nbytes(t) >= EXTERNAL_MIN_BYTES}
    temps: list[str] = [staged.temp_path] if staged is not None else []
    placed: list[Path] = []
    try:
        external = {}
        if staged is not None:
            data_path = directory / staged.location
            staged.wait()
            external = {n: p for n, t in big.items() if (p := staged.proto_for(n, t))}
            rest = {n: t for n, t in big.items() if n not in external}
            with progress_bar(sum(map(_nbytes, rest.values())), f"writing {data_path.name}",
                              progress) as bar:
                out = staged.continue_file(bar)
                external.update((name, out.add(name, t)) for name, t in rest.items())
                out.finish()
            staged.close()
        elif big:
            data_path = directory / data_location(directory, path.name)
            tmp = temp_file(directory, data_path.name)
            temps.append(tmp)
            with open(tmp, "r+b", buffering=0) as f, \
                    progress_bar(sum(map(_nbytes, big.values())), f"writing {data_path.name}",
                                 progress) as bar:
                out = DataFile(f.fileno(), data_path.name, bar, kernel_copy)
                external = {name: out.add(name, t) for name, t in big.items()}
                out.finish()
        tmp_model = temp_file(directory, path.name)
        temps.append(tmp_model)
        with open(tmp_model, "wb") as f:
            f.write(_serialize(result.skeleton, result.tensors, external))
        if big or staged is not None:
            os.replace(temps[0], data_path)
            placed.append(data_path)
        os.replace(tmp_model, path)  # the switch to the new pair
        placed.append(path)
    except OSError as e:
        _discard(staged, temps + placed)
        raise OutputError(f"cannot write: {e.strerror or e}", file=str(path)) from e
    except BaseException:  # KeyboardInterrupt too: leave nothing behind
        _discard(staged, temps + placed)
        raise
    _remove_stale_data(directory, path.name, keep=data_path)
    return placed


def data_location(directory: Path, name: str) -> str:
    """``<name>.data`` when free, else ``<name>.<random>.data``: never the old pair's file."""
    location = name + ".data"
    while (directory / location).exists():
        location = f"{name}.{secrets.token_hex(4)}.data"
    return location


def _remove_stale_data(directory: Path, name: str, keep: Path | None) -> None:
    """Data files of earlier pairs at this path (after the switch; best effort: the new
    pair is complete, an old file left behind is only disk space)."""
    pattern = re.compile(re.escape(name) + r"(\.[0-9a-f]{8})?\.data")
    try:
        stale = [p for p in directory.iterdir()
                 if pattern.fullmatch(p.name) and (keep is None or p.name != keep.name)]
        remove(stale)
    except OSError:
        pass


def _discard(staged: StagedTables | None, paths) -> None:
    if staged is not None:
        staged.discard()
    remove(paths)

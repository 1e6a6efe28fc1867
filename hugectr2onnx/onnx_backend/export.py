"""Assemble the IR into an ONNX model and save it atomically."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import OutputError, UsageError
from ..ir import Batch, Graph, Shape
from ..layers.base import Registry, default_registry
from .embedding import EmbeddingOptions, emit_embedding
from .emitter import MAX_OPSET, MIN_OPSET, OnnxEmitter

IR_VERSION = 8


@dataclass
class ExportResult:
    model: onnx.ModelProto
    embeddings: list[dict] = field(default_factory=list)


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
    data = graph.data
    inputs = [helper.make_tensor_value_info(data.dense_name, TensorProto.FLOAT,
                                            ["batch", data.dense_dim])]
    g.reserve(data.dense_name)
    emb_info = []
    for k, emb in enumerate(graph.embeddings):
        if convert_embedding:
            sp = data.sparse_input(emb.bottom)
            if emb.bottom not in g._names:
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
    initializers = [numpy_helper.from_array(np.asarray(a), name)
                    for name, a in g.initializers.items()]
    onnx_graph = helper.make_graph(g.nodes, graph_name, inputs, outputs, initializers)
    opsets = [helper.make_opsetid("", opset)]
    if g.ml_opset:
        opsets.append(helper.make_opsetid("ai.onnx.ml", g.ml_opset))
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="hugectr2onnx",
                              ir_version=IR_VERSION)
    return ExportResult(model, emb_info)


def save_model(model: onnx.ModelProto, path, *, external_data: str = "auto",
               threshold: int = int(1.8e9)) -> list[Path]:
    """Write atomically: temporary files in the target directory, then rename."""
    path = Path(os.fspath(path))
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError("output path is a directory", file=str(path))
    if not directory.is_dir():
        raise OutputError("output directory does not exist", file=str(directory))
    if not os.access(directory, os.W_OK):
        raise OutputError("output directory is not writable", file=str(directory))
    size = model.ByteSize()
    use_external = external_data == "always" or (external_data == "auto" and size > threshold)
    data_name = path.name + ".data"
    tmp_model = tmp_data = None
    try:
        fd, tmp_model = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        written = [path]
        if use_external:
            tmp_data_name = Path(tmp_model).name + ".data"
            tmp_data = directory / tmp_data_name
            onnx.save_model(model, tmp_model, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=tmp_data_name, size_threshold=1024)
            _rename_location(tmp_model, tmp_data_name, data_name)
            os.replace(tmp_data, directory / data_name)
            tmp_data = None
            written.append(directory / data_name)
        else:
            onnx.save_model(model, tmp_model)
        os.replace(tmp_model, path)
        tmp_model = None
        return written
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror}", file=str(path))
    finally:
        for t in (tmp_model, tmp_data):
            if t is not None and os.path.exists(t):
                os.unlink(t)


def _rename_location(model_file, old: str, new: str) -> None:
    m = onnx.load_model(model_file, load_external_data=False)
    for t in m.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location" and entry.value == old:
                entry.value = new
    onnx.save_model(m, model_file)

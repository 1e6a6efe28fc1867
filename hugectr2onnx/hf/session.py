"""ONNX Runtime sessions on CPU, with load failures turned into one typed error."""

from __future__ import annotations

import os

from ..errors import InputFileError


def open_session(path: str | os.PathLike, *, threads: int | None = None,
                 optimize: bool = True):
    import onnxruntime as ort

    if not os.path.isfile(path):
        raise InputFileError("no such file", file=str(path))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
        raise InputFileError(f"ONNX Runtime cannot load it: {' '.join(str(e).split())[:300]}",
                             file=str(path)) from None

"""Hugging Face transformers to ONNX: export, optimize (fp16) and run, validated at each step.

Needs the ``hf`` extra (transformers, torch, onnxscript). Models come from a local directory
or the local Hugging Face cache; nothing is downloaded.

    from hugectr2onnx import hf
    hf.export("path/to/model", "model.onnx", task="splade")
    hf.optimize("model.onnx", "model-opt.onnx", fp16=True)
    meta, results = hf.predict("model-opt.onnx", ["a query"], top_k=20)
"""

from __future__ import annotations

from .checks import ValidationReport
from .export import EXPORTERS, ExportReport, export
from .infer import TextResult, mean_pool, predict, top_terms
from .meta import HfMetadata, read_metadata
from .optimize import (FP16_BLOCKED_OPS, FP16_TOLERANCE, FP32_TOLERANCE, INT8_MIN_COSINE,
                       OptimizeReport, optimize)
from .source import TASKS, Source, resolve

__all__ = ["EXPORTERS", "ExportReport", "FP16_BLOCKED_OPS", "FP16_TOLERANCE", "FP32_TOLERANCE",
           "HfMetadata", "INT8_MIN_COSINE", "OptimizeReport", "Source", "TASKS", "TextResult",
           "ValidationReport", "export", "mean_pool", "optimize", "predict", "read_metadata",
           "resolve", "top_terms"]

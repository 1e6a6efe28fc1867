"""Passes over an ONNX model, each selectable by name; precision transforms after them.

``run_passes(result, names)`` rewrites an ExportResult in place (tables stay lazy);
``optimize(result, ...)`` adds fp16/int8 and returns a report of what each step did.
``convert`` applies DEFAULT_PASSES (no extra dependency, numerics unchanged up to float
rounding); ``hugectr2onnx optimize`` adds ``fold-constants`` when onnxscript is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from ...errors import UsageError
from ..export import ExportResult
from .batchnorm import fold_batchnorm
from .cleanup import drop_dead_nodes, drop_identity
from .constants import available as constants_available, fold_constants
from .model import PassModel
from .precision import to_fp16, to_int8
from .tables import fp16_tables, int8_tables

PASSES = {  # name -> (function, what it does)
    "fold-batchnorm": (fold_batchnorm, "BatchNormalization folded into the Gemm before it"),
    "drop-identity": (drop_identity, "Identity nodes (inference Dropout, fan-out copies) bypassed"),
    "fold-constants": (fold_constants, "constant folding and simplification (onnxscript)"),
    "dead-nodes": (drop_dead_nodes, "nodes and initializers that reach no output removed"),
}
DEFAULT_PASSES = ("fold-batchnorm", "drop-identity", "dead-nodes")


def optimize_defaults() -> tuple[str, ...]:
    """What ``hugectr2onnx optimize`` runs by default."""
    extra = ("fold-constants",) if constants_available() else ()
    return DEFAULT_PASSES[:-1] + extra + DEFAULT_PASSES[-1:]


def check_pass_names(names) -> list[str]:
    from ...hints import did_you_mean

    names = list(names)
    for n in names:
        if n not in PASSES:
            raise UsageError(f"unknown pass {n!r}{did_you_mean(n, PASSES)}; passes: "
                             f"{', '.join(PASSES)}")
    return names


@dataclass
class ModelStats:
    nodes: int
    initializers: int
    bytes: int  # graph plus tensors, as serialized (external data included)

    @classmethod
    def of(cls, result: ExportResult) -> "ModelStats":
        return cls(len(result.skeleton.graph.node), len(result.tensors),
                   result.estimated_bytes())


@dataclass
class OptimizeReport:
    before: ModelStats
    after: ModelStats | None = None
    steps: list[tuple[str, int]] = field(default_factory=list)  # (step, count)

    def lines(self) -> list[str]:
        rows = [f"  {name}: {count}" for name, count in self.steps]
        b, a = self.before, self.after
        rows.append(f"  nodes {b.nodes} -> {a.nodes}, initializers {b.initializers} -> "
                    f"{a.initializers}, size {_mb(b.bytes)} -> {_mb(a.bytes)} "
                    f"({a.bytes / max(b.bytes, 1):.2f}x)")
        return rows


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB"


def run_passes(result: ExportResult, names=DEFAULT_PASSES) -> tuple[ExportResult, list]:
    model = PassModel(result)
    steps = []
    for name in check_pass_names(names):
        steps.append((name, PASSES[name][0](model)))
    return model.result, steps


def optimize(result: ExportResult, *, passes=None, fp16: bool = False,
             fp16_tables_: bool = False, int8: bool = False, int8_tables_: bool = False,
             per_channel: bool = False) -> tuple[ExportResult, OptimizeReport]:
    if fp16 and int8:
        raise UsageError("--fp16 and --int8 exclude each other")
    if fp16_tables_ and int8_tables_:
        raise UsageError("--fp16-tables and --int8-tables exclude each other")
    report = OptimizeReport(ModelStats.of(result))
    original = result.skeleton
    result, report.steps = run_passes(result, optimize_defaults() if passes is None else passes)
    model = PassModel(result)
    if fp16:
        report.steps.append(("fp16 (casts added)", to_fp16(model)))
    if int8:
        report.steps.append(("int8 MatMuls", to_int8(model, per_channel=per_channel)))
    if fp16_tables_:
        report.steps.append(("fp16 tables", fp16_tables(model)))
    if int8_tables_:
        report.steps.append(("int8 tables", int8_tables(model)))
    _keep_identity(original, model.result.skeleton)
    report.after = ModelStats.of(model.result)
    return model.result, report


def _keep_identity(original, skeleton) -> None:
    """The producer and the metadata (the data layout that ``predict`` reads) survive the
    library passes, which may drop or replace them; entries they add are kept after."""
    added = [(p.key, p.value) for p in skeleton.metadata_props]
    keys = {p.key for p in original.metadata_props}
    del skeleton.metadata_props[:]
    for key, value in [(p.key, p.value) for p in original.metadata_props] + \
            [(k, v) for k, v in added if k not in keys]:
        entry = skeleton.metadata_props.add()
        entry.key, entry.value = key, value
    skeleton.producer_name = original.producer_name
    skeleton.producer_version = original.producer_version


__all__ = ["PASSES", "DEFAULT_PASSES", "optimize", "run_passes", "optimize_defaults",
           "OptimizeReport", "ModelStats"]

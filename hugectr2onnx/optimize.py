"""Optimize a converted ONNX model file: passes, fp16/int8, a check against the original.

The optimized model is written into a temporary folder beside the target, checked there
against the original (max abs difference; AUC and logloss when labels are given), and only
then moved into place; ``max_auc_drop`` refuses a model that loses more AUC than that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import check_target, staging_dir
from .errors import InputFileError, OutputError, UsageError
from .metrics import auc, logloss
from .progress import Stages
from .runners import OrtRunner, model_input_names
from .samples import npz_samples, pick_inputs, read_samples


@dataclass
class ModelCheck:
    """The optimized model against the original on the same inputs."""

    samples: int
    source: str
    max_abs: float
    auc: tuple[float, float] | None = None  # (original, optimized)
    logloss: tuple[float, float] | None = None

    @property
    def auc_drop(self) -> float | None:
        return None if self.auc is None else self.auc[0] - self.auc[1]

    def lines(self) -> list[str]:
        rows = [f"  checked on {self.samples} samples of {self.source}: max |diff| of the "
                f"prediction {self.max_abs:.3g}"]
        if self.auc is not None:
            rows.append(f"  AUC {self.auc[0]:.6f} -> {self.auc[1]:.6f} "
                        f"(delta {self.auc[1] - self.auc[0]:+.2e}); logloss "
                        f"{self.logloss[0]:.6f} -> {self.logloss[1]:.6f}")
        return rows


@dataclass
class OptimizeResult:
    files: list[str]
    report: object  # passes.OptimizeReport
    check: ModelCheck | None = None
    refused: str | None = None  # why nothing was written
    file_bytes: tuple[int, int] = (0, 0)

    @property
    def ok(self) -> bool:
        return self.refused is None

    def summary(self) -> str:
        lines = ["optimized:"] + self.report.lines()
        b, a = self.file_bytes
        if a:
            lines.append(f"  files {b / 2**20:.2f} MB -> {a / 2**20:.2f} MB ({a / max(b, 1):.2f}x)")
        if self.check is not None:
            lines += self.check.lines()
        if self.refused:
            lines.append(f"REFUSED: {self.refused}; nothing written")
        else:
            lines.append(f"wrote {', '.join(self.files)}")
        return "\n".join(lines)


def auc_score(labels, scores) -> float:
    """ROC AUC (metrics.auc); NaN when only one class is present."""
    value = auc(labels, scores)
    return float("nan") if value is None else value


def random_model_feeds(path, batch: int, *, seed: int = 0) -> dict:
    """Inputs from the model's declared types: floats ~ N(0, 1); int64 keys inside the
    range of a direct lookup (its Clip bounds) when there is one, else in [0, 2^20), which
    hashed tables mostly miss: pass data for a check that reaches their rows."""
    import onnx
    from onnx import numpy_helper

    from .runners import _load_skeleton

    model = _load_skeleton(Path(os.fspath(path)))
    consts = {t.name: t for t in model.graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {}
    names = set(model_input_names(path))
    for vi in model.graph.input:
        if vi.name not in names:
            continue
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else batch for d in t.shape.dim]
        dims[0] = batch
        if t.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            lo, hi = 0, 1 << 20
            for n in model.graph.node:
                if n.op_type == "Clip" and n.input[0] == vi.name and len(n.input) == 3 \
                        and all(i in consts and not consts[i].external_data for i in n.input[1:]):
                    lo = int(numpy_helper.to_array(consts[n.input[1]])) + 1
                    hi = int(numpy_helper.to_array(consts[n.input[2]]))
            dtype = np.int64 if t.elem_type == onnx.TensorProto.INT64 else np.int32
            feeds[vi.name] = rng.integers(lo, max(hi, lo + 1), dims).astype(dtype)
        else:
            feeds[vi.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def model_samples(onnx_path, source, fmt: str, count: int, label: str | None = None
                  ) -> tuple[dict, np.ndarray | None]:
    """The model's inputs and labels for the first ``count`` samples of a dataset (the
    layout from the model's metadata) or of an .npz file (arrays named after the inputs;
    the label is ``label``, or the one other array)."""
    inputs = model_input_names(onnx_path)
    if fmt == "npz":
        data, _ = npz_samples(source, count)
        feeds = pick_inputs(data, inputs, str(source))
        rest = [k for k in data if k not in inputs]
        label = label or (rest[0] if len(rest) == 1 else None)
        if label is not None and label not in data:
            raise InputFileError(f"no label array {label!r} (arrays: {sorted(data)})",
                                 file=str(source))
        return feeds, (data[label] if label else None)
    from .data import DataLayout

    feeds, labels = read_samples(source, fmt, DataLayout.from_onnx(onnx_path), count)
    feeds = pick_inputs(feeds, inputs, str(source))
    if not labels:
        return feeds, None
    name = label or OrtRunner(onnx_path).model_outputs[0]
    if name not in labels:
        raise UsageError(f"no label {name!r} in the data (labels: {sorted(labels)})")
    return feeds, labels[name]


def check_models(original, optimized, feeds: dict, labels=None, *, source: str,
                 threads: int = 0) -> ModelCheck:
    a = OrtRunner(original, threads=threads)
    b = OrtRunner(optimized, threads=threads)
    out_a, out_b = a.model_outputs[0], b.model_outputs[0]
    pa = a.run(feeds)[out_a].astype(np.float64)
    pb = b.run(feeds)[out_b].astype(np.float64)
    check = ModelCheck(samples=int(pa.shape[0]), source=source,
                       max_abs=float(np.nanmax(np.abs(pa - pb), initial=0.0)))
    if labels is not None:
        check.auc = (auc_score(labels, pa), auc_score(labels, pb))
        check.logloss = (logloss(labels, pa), logloss(labels, pb))
    return check


def optimize_file(src, dst, *, passes=None, fp16: bool = False, fp16_tables: bool = False,
                  int8: bool = False, int8_tables: bool = False, per_channel: bool = False,
                  feeds: dict | None = None, labels=None, source: str = "data",
                  batch: int = 256, seed: int = 0, check: bool = True,
                  max_auc_drop: float | None = None, external_data: str = "auto",
                  progress: bool | None = None) -> OptimizeResult:
    from .hugectr.files import existing_file
    from .onnx_backend.export import save_model
    from .onnx_backend.passes import optimize

    src, dst = Path(os.fspath(src)), Path(os.fspath(dst))
    existing_file(src, "ONNX model")
    if dst.resolve() == src.resolve():
        raise UsageError("the output would overwrite the input model")
    if max_auc_drop is not None and labels is None:
        raise UsageError("--max-auc-drop needs labelled data (--data)")
    directory = check_target(dst)
    stages, floats = Stages(progress), _file_bytes(src) // 4
    with stages.stage(f"loading {src.name}", floats):
        loaded = load_mapped(src)
    with stages.stage("optimizing", floats):
        result, report = optimize(loaded, passes=passes, fp16=fp16, fp16_tables_=fp16_tables,
                                  int8=int8, int8_tables_=int8_tables, per_channel=per_channel)
    del loaded
    with staging_dir(directory, f".{dst.name}.") as tmp:
        written = save_model(result, tmp / dst.name, external_data=external_data,
                             progress=progress)
        out = OptimizeResult(files=[], report=report,
                             file_bytes=(_file_bytes(src), sum(p.stat().st_size for p in written)))
        if check:
            if feeds is None:
                feeds, source = random_model_feeds(src, batch, seed=seed), "random inputs"
            with stages.stage("checking against the original", floats):
                out.check = check_models(src, tmp / dst.name, feeds, labels, source=source)
            drop = out.check.auc_drop
            if max_auc_drop is not None and drop is not None and not drop <= max_auc_drop:
                out.refused = f"AUC drops by {drop:.2e}, more than --max-auc-drop {max_auc_drop:g}"
                return out
        try:
            for p in written:
                os.replace(p, directory / p.name)
                out.files.append(str(directory / p.name))
        except OSError as e:
            raise OutputError(f"cannot write: {e.strerror or e}", file=str(dst)) from None
        return out


def load_mapped(path: Path):
    """The model as an ExportResult whose external tensors are read-only memory maps of its
    data file: tables of many GB are neither read in nor copied unless a step changes them
    (fp16/int8 tables convert them in memory)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.external_data_helper import uses_external_data

    from .onnx_backend.export import ExportResult

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise InputFileError(f"cannot load the model: {str(e).splitlines()[0]:.200}",
                             file=str(path)) from None
    tensors = {}
    for t in model.graph.initializer:
        if not uses_external_data(t):
            tensors[t.name] = numpy_helper.to_array(t)
            continue
        info = {e.key: e.value for e in t.external_data}
        data = path.parent / info.get("location", "")
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).newbyteorder("<")
        shape = tuple(int(d) for d in t.dims)
        offset = int(info.get("offset", 0))
        need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not data.is_file() or data.stat().st_size < need:
            raise InputFileError(f"external data of {t.name!r} missing or short (needs "
                                 f"{need} bytes)", file=str(data))
        tensors[t.name] = (np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=shape)
                           if shape and need > offset else np.zeros(shape, dtype))
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    del skeleton.graph.initializer[:]
    return ExportResult(skeleton, tensors)


def _file_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)

"""Score a HugeCTR dataset with a converted model: predictions in file order and metrics.

>>> result = predict("model.onnx", "file_list.txt", "norm", batch_size=4096)
>>> result.metrics["label"]["auc"], result.outputs["label"].shape

The dataset is streamed (a few batches in flight, read on a thread while the model runs);
what grows with the dataset is only the predictions (and labels) kept for the output file
and the exact AUC: 4 bytes per output value and per label value.

The model runs through a *scorer*: anything with ``run(feeds) -> {output name: array}``
and an ``output_names`` list. ``OrtScorer`` (ONNX Runtime on the whole model) is the
default; another one (e.g. a dense-only model whose embeddings come from a key-value
store) is passed as ``scorer=``.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from .atomic import atomic_path
from .data import DataLayout, open_dataset
from .errors import InputFileError, UsageError
from .metrics import evaluate
from .progress import bar_enabled, progress_bar

OUTPUT_SUFFIXES = (".npz", ".npy", ".csv", ".parquet")
PREFETCH = 2  # batches decoded ahead of the model


class Scorer(Protocol):
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OrtScorer:
    """ONNX Runtime on the whole model. ``threads``: intra-op threads (None: ORT's default)."""

    def __init__(self, onnx_path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for unloadable models
            raise InputFileError(f"ONNX Runtime cannot load the model: {e}",
                                 file=str(onnx_path)) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {n: feeds[n] for n in self.input_names}
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))


@dataclass
class PredictResult:
    outputs: dict[str, np.ndarray]  # name -> [N, dim], file order
    labels: dict[str, np.ndarray] | None
    samples: int
    seconds: float
    metrics: dict = field(default_factory=dict)  # name -> {samples, auc, logloss}

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {"samples": self.samples, "samples_per_s": round(self.samples_per_s, 1),
                "outputs": {n: {"auc": m["auc"], "logloss": m["logloss"]}
                            for n, m in self.metrics.items()}}

    def summary(self) -> str:
        lines = [f"{n}: {m['samples']} samples, AUC {_num(m['auc'])}, "
                 f"logloss {_num(m['logloss'])}" for n, m in self.metrics.items()]
        if not self.metrics:
            lines.append(f"{self.samples} samples (no labels to evaluate)")
        lines.append(f"{self.samples_per_s:,.0f} samples/s ({self.seconds:.2f} s)")
        return "\n".join(lines)


def _num(x) -> str:
    return "n/a (one class only, or NaN predictions)" if x is None else f"{x:.6f}"


def check_output_path(path) -> str:
    """The output format from the suffix; fails before any scoring when it cannot work."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"output must end in one of {', '.join(OUTPUT_SUFFIXES)}, "
                         f"found {str(path)!r}")
    parent = Path(path).parent if str(Path(path).parent) else Path(".")
    if not parent.is_dir():
        from .errors import OutputError
        raise OutputError("output directory does not exist", file=str(parent))
    return suffix


def model_layout(onnx_path, *, key_type: str | None = None, slot_size_array=None) -> DataLayout:
    """The model's data layout (its metadata) with the user's overrides."""
    return DataLayout.from_onnx(onnx_path).with_options(key_type=key_type,
                                                        slot_size_array=slot_size_array)


def prefetched(batches: Iterator, depth: int = PREFETCH) -> Iterator:
    """Iterate ``batches`` on a thread, at most ``depth`` ahead; errors re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = object()
    stop = threading.Event()

    def work():
        try:
            for b in batches:
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, name="hugectr2onnx-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def predict(onnx_path, data, fmt: str, *, batch_size: int = 4096, threads: int | None = None,
            slot_size_array=None, key_type: str | None = None, num_samples: int | None = None,
            float_label_dense: bool = False, scorer: Scorer | None = None,
            layout: DataLayout | None = None, progress: bool | None = None,
            prefetch: int = PREFETCH) -> PredictResult:
    """Score dataset ``data`` (format ``fmt``: norm, raw, rawasync, parquet) with the model.

    The split of labels, dense values and slots, the key type, padding key and Parquet
    ``slot_size_array`` come from the model's metadata; ``key_type`` and
    ``slot_size_array`` override them (or pass a whole ``layout``). Batches are consecutive
    samples across file boundaries, as in HugeCTR."""
    layout = layout or model_layout(onnx_path, key_type=key_type, slot_size_array=slot_size_array)
    scorer = scorer or OrtScorer(onnx_path, threads)
    missing = [n for n in getattr(scorer, "input_names", [])
               if n != layout.dense_name and n not in {s.name for s in layout.sparse}]
    if missing:
        raise UsageError(f"the model's inputs {missing} are not fed by its data layout")
    batches = open_dataset(data, fmt, layout, batch_size, num_samples=num_samples,
                           float_label_dense=float_label_dense)
    if prefetch:
        batches = prefetched(batches, prefetch)
    outs: dict[str, list] = {n: [] for n in scorer.output_names}
    labels: dict[str, list] | None = None
    count = 0
    start = time.perf_counter()
    total = 0
    if bar_enabled(progress):
        from .data import count_samples
        total = count_samples(data, fmt, layout, float_label_dense=float_label_dense) or 0
        total = min(total, num_samples) if num_samples is not None else total
    with progress_bar(total, "scoring", progress, unit="samples") as bar:
        for batch in batches:
            result = scorer.run(batch.inputs)
            for n in outs:
                outs[n].append(np.asarray(result[n]).reshape(len(batch), -1))
            if batch.labels is not None:
                labels = labels or {n: [] for n in batch.labels}
                for n, v in batch.labels.items():
                    labels[n].append(v)
            count += len(batch)
            bar.update(len(batch))
    seconds = time.perf_counter() - start
    outputs = {n: _join(v) for n, v in outs.items()}
    label_arrays = None if labels is None else {n: _join(v) for n, v in labels.items()}
    return PredictResult(outputs, label_arrays, count, seconds,
                         evaluate(outputs, label_arrays))


def _join(parts: list) -> np.ndarray:
    if not parts:
        return np.zeros((0, 1), np.float32)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def write_predictions(path, outputs: dict[str, np.ndarray]) -> None:
    """Predictions in file order, atomically: .npz one array per output [N, dim]; .npy the
    only output; .csv / .parquet one column per output element (``name`` when the output
    has one element, ``name_j`` otherwise)."""
    suffix = check_output_path(path)
    if suffix == ".npy" and len(outputs) != 1:
        raise UsageError(f".npy holds one array but the model has {len(outputs)} outputs "
                         f"({', '.join(outputs)}); use .npz, .csv or .parquet")
    columns = {}
    for name, arr in outputs.items():
        arr = arr.reshape(arr.shape[0], -1)
        for j in range(arr.shape[1]):
            columns[name if arr.shape[1] == 1 else f"{name}_{j}"] = arr[:, j]
    with atomic_path(path) as tmp:
        if suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, **outputs)
        elif suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, next(iter(outputs.values())))
        elif suffix == ".csv":
            table = np.column_stack(list(columns.values())) if columns else np.zeros((0, 0))
            with open(tmp, "w") as f:
                f.write(",".join(columns) + "\n")
                np.savetxt(f, table, fmt="%.9g", delimiter=",")
        else:
            from .data.parquet import _pyarrow
            pa, pq = _pyarrow()
            pq.write_table(pa.table({n: pa.array(v) for n, v in columns.items()}), tmp)

"""``predict`` on Ray Data: a Parquet dataset scored by actors, one ONNX Runtime session each.

>>> result = predict_ray("model.onnx", "data/_file_list.txt", batch_size=4096)

The work items are the dataset's Parquet row groups, in file order. Each actor reads its row
groups with pyarrow, decodes them with the local reader (data/parquet.py) and scores them; the
predictions stream back in order, so the numbers are those of the local ``predict``. With
``redis=`` the actors run a dense-only model and look the embeddings up in Redis (RedisScorer's
keyword arguments). Running on a multi-node cluster: docs/redis.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .errors import UsageError
from .metrics import evaluate
from .predict import PredictResult, model_layout


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs the ray extra: pip install 'hugectr2onnx[ray]'") \
            from None
    return ray


class _RowGroupScorer:
    """A Ray actor: reads row groups, decodes them and scores them with its own session."""

    def __init__(self, onnx_path, data, layout, batch_size, redis, threads):
        from .data.parquet import ParquetReader

        self.reader = ParquetReader(data, layout)
        self.layout, self.batch_size = layout, batch_size
        if redis is not None:
            from .redis.scorer import RedisScorer

            self.scorer = RedisScorer(onnx_path, threads=threads, **redis)
        else:
            from .predict import OrtScorer

            self.scorer = OrtScorer(onnx_path, threads)

    def __call__(self, items: dict) -> dict:
        outs: dict[str, list] = {}
        for path, group, first in zip(items["path"], items["group"], items["first_row"]):
            part = self.reader.open(str(path))
            for chunk in part.chunks(self.batch_size, row_groups=[int(group)],
                                     first_row=int(first)):
                feeds = {self.layout.dense_name: chunk.dense}
                feeds.update((s.name, k) for s, k in zip(self.layout.sparse, chunk.keys))
                n = len(chunk)
                for k, v in self.scorer.run(feeds).items():
                    outs.setdefault(f"out/{k}", []).append(np.asarray(v).reshape(n, -1))
                if chunk.labels is not None:
                    for k, v in self.layout.split_labels(chunk.labels).items():
                        outs.setdefault(f"label/{k}", []).append(v)
        # one item per call (batch_size=1): one cell holding its [rows, dim] block
        return {k: _cell(np.concatenate(v)) for k, v in outs.items()}


def _cell(block: np.ndarray) -> np.ndarray:
    out = np.empty(1, dtype=object)
    out[0] = block
    return out


def row_groups(files: list[str]) -> list[dict]:
    """One work item per row group, in file order."""
    import pyarrow.parquet as pq

    items = []
    for f in files:
        meta = pq.ParquetFile(f).metadata
        first = 0
        for g in range(meta.num_row_groups):
            items.append({"path": str(Path(f).resolve()), "group": g, "first_row": first})
            first += meta.row_group(g).num_rows
    return items


def predict_ray(onnx_path, data, *, batch_size: int = 4096, key_type: str | None = None,
                slot_size_array=None, num_samples: int | None = None, layout=None,
                redis: dict | None = None, address: str | None = None,
                num_cpus: int | None = None, concurrency: int | None = None,
                threads_per_actor: int = 1) -> PredictResult:
    """Score a HugeCTR Parquet dataset on Ray. ``address``: an existing cluster ("auto" or
    ray://...); without it a local Ray starts with ``num_cpus``. ``concurrency``: actors
    (default: the cluster's CPUs / ``threads_per_actor``)."""
    ray = _ray()
    from .data.parquet import ParquetReader, parquet_files

    if layout is None:
        if redis is not None:
            from .redis.scorer import RedisScorer

            with RedisScorer(onnx_path, **redis) as probe:  # fails early, on the driver
                layout = probe.layout(key_type=key_type, slot_size_array=slot_size_array)
        else:
            layout = model_layout(onnx_path, key_type=key_type, slot_size_array=slot_size_array)
    files, _ = parquet_files(data)
    ParquetReader(data, layout)  # checks _metadata.json against the model, on the driver
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    if concurrency is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        concurrency = max(1, cpus // max(1, threads_per_actor))
    start = time.perf_counter()
    items = row_groups(files)
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    scored = ds.map_batches(_RowGroupScorer, batch_size=1, batch_format="numpy",
                            fn_constructor_kwargs=dict(onnx_path=str(Path(onnx_path).resolve()),
                                                       data=str(data), layout=layout,
                                                       batch_size=batch_size, redis=redis,
                                                       threads=threads_per_actor),
                            compute=ray.data.ActorPoolStrategy(size=concurrency),
                            num_cpus=threads_per_actor)
    outs: dict[str, list] = {}
    for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
        for k, cells in batch.items():
            outs.setdefault(k, []).extend(cells)
    seconds = time.perf_counter() - start
    joined = {k: np.concatenate(v).astype(np.float32, copy=False) for k, v in outs.items()}
    if num_samples is not None:
        joined = {k: v[:num_samples] for k, v in joined.items()}
    outputs = {k.split("/", 1)[1]: v for k, v in joined.items() if k.startswith("out/")}
    labels = {k.split("/", 1)[1]: v for k, v in joined.items() if k.startswith("label/")} or None
    count = next(iter(outputs.values())).shape[0] if outputs else 0
    return PredictResult(outputs, labels, count, seconds, evaluate(outputs, labels))

"""Score with a dense-only ONNX model and embeddings looked up in Redis (the HPS setup).

The dense-only model is what ``convert`` writes without ``--convert-embedding``: one float
input per embedding output ``[B, slots, vec]``. The scorer takes the graph's key inputs,
looks the keys up in Redis and feeds the pooled vectors to ONNX Runtime.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError, UsageError
from ..hugectr.graph_json import load_graph
from .layout import DEFAULT_PARTITIONS
from .lookup import MAX_FIELDS, RedisTables
from .store import RedisOptions, RedisStore, split_model_url


class RedisScorer:
    """``RedisScorer("dense.onnx", "model.json", "redis://host:6379/MODEL")``, then
    ``predict({dense_name: [B, dense_dim], key_input: [B, slots, nnz] int64, ...})``."""

    def __init__(self, onnx_path, graph_config, url: str, *, model: str | None = None,
                 tables=None, partitions: int = DEFAULT_PARTITIONS, key_bytes: int = 8,
                 options: RedisOptions | None = None, cache_keys: int = 0,
                 padding_key: int | None = -1, threads: int = 0,
                 max_fields: int = MAX_FIELDS):
        if model is None:
            url, model = split_model_url(url)
        self.graph = load_graph(graph_config)
        self.onnx_path = str(onnx_path)
        self.session = _session(onnx_path, threads)
        inputs = {i.name: i for i in self.session.get_inputs()}
        embedded = [e.bottom for e in self.graph.embeddings if e.bottom in inputs]
        if embedded:
            raise UsageError(f"the model looks its keys up itself (input {embedded[0]!r}); "
                             f"Redis scoring needs the dense-only model (convert without "
                             f"--convert-embedding)", file=str(onnx_path))
        missing = [e.top for e in self.graph.embeddings if e.top not in inputs]
        if missing:
            raise UsageError(f"the model has no input {missing[0]!r} for embedding output "
                             f"(converted from another graph?)", file=str(onnx_path))
        self.onnx_inputs = list(inputs)
        tops = {e.top for e in self.graph.embeddings}
        # what a caller feeds: the model's other inputs (dense) and the graph's key inputs
        self.input_names = [n for n in inputs if n not in tops] + self.key_inputs
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.store = RedisStore(url, options)
        self.tables = RedisTables(self.store, model, self.graph.embeddings, tables=tables,
                                  partitions=partitions, key_bytes=key_bytes,
                                  padding_key=padding_key, cache_keys=cache_keys,
                                  max_fields=max_fields)

    @property
    def key_inputs(self) -> list[str]:
        return [e.bottom for e in self.graph.embeddings]

    def embed(self, feeds: dict) -> dict[str, np.ndarray]:
        """The pooled embedding outputs, by the graph's top names."""
        absent = [n for n in self.key_inputs if n not in feeds]
        if absent:
            raise UsageError(f"no keys for sparse input {absent[0]!r}")
        pooled = self.tables.lookup([feeds[e.bottom] for e in self.graph.embeddings])
        return {e.top: v for e, v in zip(self.graph.embeddings, pooled)}

    def predict(self, feeds: dict) -> dict[str, np.ndarray]:
        run_feeds = {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()
                     if k in self.onnx_inputs}
        run_feeds.update(self.embed(feeds))
        absent = [n for n in self.onnx_inputs if n not in run_feeds]
        if absent:
            raise UsageError(f"no data for the model's input {absent[0]!r}")
        return dict(zip(self.output_names, self.session.run(None, run_feeds)))

    run = predict  # the predict module's Scorer protocol

    def layout(self, *, key_type: str | None = None, slot_size_array=None):
        """The data layout to read datasets with: the model's metadata (written at convert),
        else the graph's Data block."""
        from ..data.layout import DataLayout
        from ..onnx_backend.metadata import load_proto, read_metadata

        data = read_metadata(load_proto(self.onnx_path)).get("data")
        if isinstance(data, dict):
            layout = DataLayout.from_dict(data)
        else:
            layout = DataLayout.from_data_input(self.graph.data,
                                                padding_key=self.tables.padding_key)
        return layout.with_options(key_type=key_type, slot_size_array=slot_size_array)

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _session(onnx_path, threads: int):
    import onnxruntime as ort

    from ..hugectr.files import existing_file

    existing_file(onnx_path, "ONNX model")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for unreadable models
        raise InputFileError(f"ONNX Runtime cannot load the model: {str(e).splitlines()[0]:.200}",
                             file=str(onnx_path))

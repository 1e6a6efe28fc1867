"""``load_model``, ``export_saved_model`` and ``save_hugectr``: HugeCTR files -> Keras model ->
SavedModel, and back to HugeCTR files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import tensorflow as tf
import keras

from ..atomic import staging_dir
from ..converter import _check_options
from ..errors import OutputError, UsageError
from ..hugectr.collection_description import COLLECTION_TYPE, description_document
from ..hugectr.files import read_text
from ..hugectr.snapshot import CollectionSnapshot, write_snapshot
from ..hugectr.writer import Artifacts
from ..loader import load_model as load_graph
from ..options import ConvertOptions
from .model import HugeCTRModel


def load_model(graph_config, dense_model, sparse_models=None, ntp_file=None, *,
               options: ConvertOptions | None = None, label_weights: dict | None = None,
               **kwargs) -> HugeCTRModel:
    """A trainable Keras model of a HugeCTR model; arguments and keyword options as in
    ``convert()`` (``padding_key``, ``num_gpus``, ``key_type``, ``projection_dims``,
    ``strict_finite``; the ONNX-only ones are accepted and unused). With ``sparse_models``
    the model takes keys; without, embedding vectors (``convert_embedding=False``).
    ``label_weights``: HugeCTR's per-label loss weights (default 1)."""
    o = ConvertOptions.from_kwargs(options, **kwargs)
    _check_options(o.num_gpus, o.padding_key)
    ebc = o.embedding_collection
    graph = load_graph(graph_config, dense_model, sparse_models, ntp_file, key_type=o.key_type,
                       projection_dims=o.projection_dims, strict_finite=o.strict_finite,
                       embedding_collection=ebc)
    if ebc and sparse_models is None and any(e.table is None for e in graph.embeddings):
        raise UsageError("the graph's sparse embeddings need sparse_models besides the "
                         "embedding collection")
    model = HugeCTRModel(graph, graph_json=read_text(graph_config, "graph config"),
                         convert_embedding=sparse_models is not None or bool(ebc),
                         padding_key=o.padding_key, num_gpus=o.num_gpus,
                         label_weights=label_weights,
                         collection=description_document(ebc) if ebc else None)
    model(model.example_inputs())  # builds the model
    return model


def export_saved_model(model: HugeCTRModel, path) -> str:
    """A SavedModel whose ``serving_default`` signature takes the raw inputs by their ONNX
    names and returns ``{label: prediction}``; it loads with ``tf.saved_model.load`` alone.
    Written beside ``path`` and renamed into place; an existing SavedModel is replaced."""
    path = Path(path)
    if path.exists() and not (path.is_dir() and (not any(path.iterdir())
                                                 or (path / "saved_model.pb").exists())):
        raise OutputError("exists and is not a SavedModel directory", file=str(path))
    with staging_dir(path.resolve().parent, f".{path.name}.") as staging:
        try:
            archive = keras.export.ExportArchive()
            # no archive.track(model): it would store each variable twice (Keras' wrapper and
            # the tf.Variable the endpoint uses), doubling the SavedModel
            archive.add_endpoint("serve", lambda inputs: model(inputs, training=False),
                                 input_signature=[model.input_specs()])
            archive.write_out(str(staging / "saved_model"), verbose=False)
            if path.exists():
                shutil.rmtree(path)
            os.replace(staging / "saved_model", path)
        except OSError as e:
            raise OutputError(f"cannot write the SavedModel: {e}", file=str(path))
    return str(path)


def save_hugectr(model: HugeCTRModel, directory, prefix: str = "model",
                 iteration: int = 0) -> Artifacts:
    """The model's current weights and tables as a HugeCTR snapshot (hugectr/snapshot.py):
    ``{prefix}.json``, ``{prefix}_dense_{iteration}.model`` (+ ``.ntp.json`` for BatchNorm),
    ``{prefix}{i}_sparse_{iteration}.model/`` folders; an embedding collection as an
    ``embedding_dump`` folder ``{prefix}_ebc_{iteration}/`` and its description
    ``{prefix}_ebc_{iteration}.json``. The result's ``graph_config``, ``dense_model``,
    ``sparse_models``, ``ntp_file`` and ``embedding_collection`` go straight to
    ``convert()`` and ``load_model()``."""
    if model.graph_json is None:
        raise UsageError("the model has no graph JSON to write (build it with load_model)")
    if not model.convert_embedding and model.graph.embeddings:
        raise UsageError("the model takes embedding vectors (loaded without sparse models): "
                         "it has no tables to write")
    graph = model.to_graph()
    legacy = [e.table for e in graph.embeddings if e.type != COLLECTION_TYPE]
    collection = None
    if model.collection is not None:
        collection = CollectionSnapshot(model.collection, {
            e.table_name: (e.table.keys, e.table.vectors)
            for e in graph.embeddings if e.type == COLLECTION_TYPE})
    return write_snapshot(directory, graph, model.graph_json,
                          [{"keys": t.keys, "vectors": t.vectors, "slot_ids": t.slot_ids}
                           for t in legacy], prefix=prefix, iteration=iteration,
                          collection=collection)


class SavedModelRunner:
    """A runner (runners.py) over a SavedModel's ``serving_default``, loaded with
    ``tf.saved_model.load`` alone: the model's outputs, named after the labels."""

    name = "savedmodel"

    def __init__(self, path):
        self.serve = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(self, feeds: dict) -> dict:
        got = self.serve(**{k: tf.constant(v) for k, v in feeds.items()})
        return {k: v.numpy() for k, v in got.items()}


def verify_saved_model(path, graph, *, batch: int = 64, seed: int = 0, atol: float = 1e-5,
                       rtol: float = 0.0, padding_key: int | None = -1,
                       num_gpus: int | None = None, convert_embedding: bool = True):
    """Serve random inputs through the SavedModel and compare with the numpy reference."""
    from ..runners import ReferenceRunner, compare_tensors
    from ..verify import VerificationReport, random_feeds

    feeds = random_feeds(graph, batch, convert_embedding=convert_embedding, seed=seed,
                         padding_key=padding_key)
    got = SavedModelRunner(path).run(feeds)
    want = ReferenceRunner(graph, padding_key=padding_key, num_gpus=num_gpus).run(feeds)
    report = VerificationReport(batch=batch, atol=atol, rtol=rtol,
                                embedding_mode="keys" if convert_embedding else "vectors")
    for o in graph.outputs:
        report.outputs.append(compare_tensors(o.name, got[o.name], want[o.name],
                                              atol=atol, rtol=rtol))
    return report

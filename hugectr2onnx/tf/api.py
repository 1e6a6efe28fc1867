"""``load_model``, ``export_saved_model`` and ``save_hugectr``: HugeCTR files -> Keras model ->
SavedModel, and back to HugeCTR files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import keras

from ..converter import _check_options
from ..errors import OutputError, UsageError
from ..hugectr.files import existing_file
from ..hugectr.writer import write_dense, write_ntp, write_sparse_folder
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
    graph = load_graph(graph_config, dense_model, sparse_models, ntp_file, key_type=o.key_type,
                       projection_dims=o.projection_dims, strict_finite=o.strict_finite)
    model = HugeCTRModel(graph, convert_embedding=sparse_models is not None,
                         padding_key=o.padding_key, num_gpus=o.num_gpus,
                         label_weights=label_weights)
    model.graph_json = json.loads(Path(existing_file(graph_config, "graph config")).read_text())
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
    parent = path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror}", file=str(path))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda inputs: model(inputs, training=False),
                             input_signature=[model.input_specs()])
        archive.write_out(str(staging / "saved_model"), verbose=False)
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging / "saved_model", path)
    except OSError as e:
        raise OutputError(f"cannot write the SavedModel: {e}", file=str(path))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(path)


@dataclass
class HugeCTRFiles:
    """What ``save_hugectr`` wrote; the attributes go straight to ``convert()``."""

    graph_config: str
    dense_model: str
    sparse_models: list[str]
    ntp_file: str | None


def save_hugectr(model: HugeCTRModel, directory, prefix: str = "model",
                 iteration: int = 0) -> HugeCTRFiles:
    """The model's current weights and tables as HugeCTR files, named as HugeCTR names a
    snapshot: ``{prefix}.json``, ``{prefix}_dense_{iteration}.model`` (+ ``.ntp.json`` for
    BatchNorm), ``{prefix}{i}_sparse_{iteration}.model/`` folders (``key``, ``emb_vector``,
    ``slot_id`` for Localized). Each is staged and renamed into place."""
    if not model.convert_embedding and model.graph.embeddings:
        raise UsageError("the model takes embedding vectors (loaded without sparse models): "
                         "it has no tables to write")
    directory = Path(directory)
    graph = model.to_graph()
    names = HugeCTRFiles(f"{prefix}.json", f"{prefix}_dense_{iteration}.model",
                         [f"{prefix}{i}_sparse_{iteration}.model"
                          for i in range(len(graph.embeddings))],
                         f"{prefix}_dense_{iteration}.model.ntp.json")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{prefix}.", dir=directory))
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror}", file=str(directory))
    try:
        doc = getattr(model, "graph_json", None)
        (staging / names.graph_config).write_text(json.dumps(doc, indent=2))
        write_dense(staging / names.dense_model, graph)
        has_ntp = write_ntp(staging / names.ntp_file, graph)
        for emb, name in zip(graph.embeddings, names.sparse_models):
            t = emb.table
            write_sparse_folder(staging / name, t.keys, t.vectors,
                                t.slot_ids if emb.localized else None)
        written = [names.graph_config, names.dense_model, *names.sparse_models]
        written += [names.ntp_file] if has_ntp else []
        for name in written:
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(staging / name, target)
    except OSError as e:
        raise OutputError(f"cannot write HugeCTR files: {e}", file=str(directory))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return HugeCTRFiles(str(directory / names.graph_config), str(directory / names.dense_model),
                        [str(directory / n) for n in names.sparse_models],
                        str(directory / names.ntp_file) if has_ntp else None)


def verify_saved_model(path, graph, *, batch: int = 64, seed: int = 0, atol: float = 1e-5,
                       padding_key: int | None = -1, num_gpus: int | None = None,
                       convert_embedding: bool = True):
    """Serve random inputs through the SavedModel's ``serving_default`` (loaded with
    ``tf.saved_model.load`` alone) and compare with the numpy reference."""
    from ..reference import run_reference
    from ..verify import OutputComparison, VerificationReport, random_feeds

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    feeds = random_feeds(graph, batch, convert_embedding=convert_embedding, seed=seed,
                         padding_key=padding_key)
    got = serve(**{k: tf.constant(v) for k, v in feeds.items()})
    want = run_reference(graph, feeds, padding_key=padding_key, num_gpus=num_gpus)
    report = VerificationReport(batch=batch, atol=atol)
    for name, w in want.items():
        have = got[name].numpy()
        diff = np.abs(have.astype(np.float64) - w)
        report.outputs.append(OutputComparison(
            name, float(diff.max(initial=0)),
            float((diff / np.maximum(np.abs(w), 1e-6)).max(initial=0)), have.shape))
    return report

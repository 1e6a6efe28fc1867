"""A HugeCTR graph as a trainable Keras model: every layer is its handler's ``forward``
(backends contract) on TensorFlow ops, parameters in HugeCTR's layout named after their
WeightSpec (``fc1/W``), embeddings as in-graph hashed-key tables (embedding.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import keras

from ..errors import UsageError
from ..hugectr.collection_description import COLLECTION_TYPE
from ..hugectr.sparse import check_keys
from ..ir import Graph, Layer
from ..layers.base import Registry, default_registry
from .embedding import HugeCTREmbedding, from_array
from .ops import OPS


def keras_name(tensor: str) -> str:
    return tensor.replace("/", "_")


class GraphLayer(keras.layers.Layer):
    """One HugeCTR dense layer: trainable ``weight_specs`` tensors and non-trainable
    ``ntp_specs`` ones (BatchNorm statistics), run by the handler's ``forward``."""

    def __init__(self, handler, layer: Layer, **kwargs):
        super().__init__(name=keras_name(layer.tops[0]), **kwargs)
        self.handler, self.hugectr_layer = handler, layer
        self.params = {}
        for trainable, specs in ((True, handler.weight_specs(layer)),
                                 (False, handler.ntp_specs(layer))):
            for spec in specs:
                self.params[spec.name] = self.add_weight(
                    shape=spec.shape, name=spec.name, trainable=trainable,
                    initializer=from_array(np.asarray(layer.weights[spec.name], np.float32)))
        self.built = True

    def call(self, xs, training=False):
        params = {k: v.value for k, v in self.params.items()}
        return self.handler.forward(self.hugectr_layer, OPS, list(xs), params,
                                    training=bool(training))


class HugeCTRLoss(keras.losses.Loss):
    """HugeCTR's training loss of one loss layer: the handler's ``loss``, plus its L1/L2
    regularizer term over the model's dense weights when the JSON sets one.

    It needs the loss layer's logits: the model's predictions carry them as
    ``_keras_logits``, Keras' own convention for sigmoid and softmax outputs, in ``fit``,
    ``evaluate`` and eager loops alike. A prediction that lost them (a copy) falls back to
    logits recovered from clipped probabilities, as Keras' own losses do."""

    def __init__(self, model: "HugeCTRModel", label: str, name: str | None = None):
        super().__init__(name=name or f"{keras_name(label)}_loss")
        self.loss_of_logits = lambda logits, y: model.layer_loss(label, logits, y)
        self.kind = model.loss_layers[label][1].type

    def call(self, y_true, y_pred):
        logits = getattr(y_pred, "_keras_logits", None)
        if logits is None:
            logits = _logits_of(self.kind, y_pred)
        return self.loss_of_logits(logits, y_true)

    def get_config(self):
        return {"name": self.name}


def _as_input(name: str, value, dtype):
    """One input as a tensor of the signature's dtype; keys must be integers (a float key
    would be truncated silently)."""
    x = value if tf.is_tensor(value) else tf.convert_to_tensor(np.asarray(value))
    if dtype == tf.int64 and not x.dtype.is_integer:
        raise UsageError(f"input {name!r} holds keys and must be an integer array, "
                         f"found {x.dtype.name}")
    return x if x.dtype == dtype else tf.cast(x, dtype)


def _logits_of(kind: str, p):
    p = tf.clip_by_value(p, 1e-7, 1 - 1e-7)
    if kind == "CrossEntropyLoss":
        return tf.math.log(p)  # softmax is invariant to the shared constant
    return tf.math.log(p) - tf.math.log1p(-p)


class HugeCTRModel(keras.Model):
    """``call(inputs)`` takes the ONNX model's inputs by name (dense float32 [B, dense_dim];
    keys int64 [B, slots, max_nnz] padded with ``padding_key``, or embedding vectors
    [B, slots, vec] in dense-only mode) and returns ``{label: prediction}``, equal to the
    ONNX outputs. ``training=True`` gives HugeCTR's training behaviour. ``compile()``
    without ``loss`` uses HugeCTR's losses, weighted by ``label_weights``."""

    def __init__(self, graph: Graph, *, graph_json: str | None = None,
                 convert_embedding: bool = True,
                 padding_key: int | None = -1, num_gpus: int | None = None,
                 label_weights: dict | None = None, registry: Registry | None = None,
                 name: str | None = None, collection: dict | None = None):
        super().__init__(name=keras_name(name or graph.model_name or "hugectr"))
        registry = registry or default_registry()
        self.graph, self.graph_json = graph, graph_json  # the JSON text save_hugectr writes
        self.convert_embedding, self.padding_key = convert_embedding, padding_key
        unknown = sorted(set(label_weights or {}) - {o.name for o in graph.outputs})
        if unknown:
            raise UsageError(f"label_weights names {unknown}, the graph's labels are "
                             f"{[o.name for o in graph.outputs]}")
        self.label_weights = {o.name: float((label_weights or {}).get(o.name, 1.0))
                              for o in graph.outputs}
        self.collection = collection  # the embedding collection's description document
        self.embedding_layers = []  # per graph embedding; a collection's shared tables: one
        tables = {}
        for emb in graph.embeddings if convert_embedding else []:
            t = emb.table
            if id(t) not in tables:
                gpus = check_keys(t, emb, num_gpus)  # 1 unless Localized keys repeat
                name = (f"ebc_{emb.table_name}" if emb.type == COLLECTION_TYPE else emb.top)
                tables[id(t)] = HugeCTREmbedding(
                    t.keys, t.vectors, slot_num=emb.slot_num, combiner=emb.combiner,
                    slot_ids=t.slot_ids if emb.localized else None, num_gpus=gpus,
                    padding_key=padding_key, name=keras_name(name))
            self.embedding_layers.append(tables[id(t)])
        self.graph_layers = [GraphLayer(registry.get(l.type), l) for l in graph.layers]
        self.loss_layers = {l.bottoms[1]: (g.handler, l) for g, l in
                            zip(self.graph_layers, graph.layers) if g.handler.is_loss}

    # ---------------------------------------------------------------- inputs
    def input_specs(self) -> dict:
        """The serving signature: one TensorSpec per ONNX input, batch unknown."""
        data = self.graph.data
        specs = {data.dense_name: tf.TensorSpec([None, data.dense_dim], tf.float32,
                                                name=data.dense_name)}
        for emb in self.graph.embeddings:
            if self.convert_embedding:
                sp = data.sparse_input(emb.bottom)
                specs[emb.bottom] = tf.TensorSpec([None, sp.slot_num, sp.max_nnz], tf.int64,
                                                  name=emb.bottom)
            else:
                specs[emb.top] = tf.TensorSpec([None, emb.slot_num, emb.vec_size], tf.float32,
                                               name=emb.top)
        return specs

    def example_inputs(self, batch: int = 2) -> dict:
        """Inputs of the right names, shapes and dtypes (padding keys, zeros)."""
        pad = -1 if self.padding_key is None else self.padding_key
        return {name: (np.full([batch, *s.shape[1:]], pad, np.int64) if s.dtype == tf.int64
                       else np.zeros([batch, *s.shape[1:]], np.float32))
                for name, s in self.input_specs().items()}

    # ---------------------------------------------------------------- forward
    def _forward(self, inputs, training):
        """(logits of each loss layer, prediction of each output), keyed by label."""
        data = self.graph.data
        values = {}
        for name, spec in self.input_specs().items():
            if name in inputs:
                values[name] = _as_input(name, inputs[name], spec.dtype)
            elif name == data.dense_name and data.dense_dim == 0:
                first = next(iter(inputs.values()))
                values[name] = tf.zeros([tf.shape(first)[0], 0], tf.float32)
            else:
                raise UsageError(f"missing input {name!r} (the model's inputs: "
                                 f"{', '.join(self.input_specs())})")
        for emb, layer in zip(self.graph.embeddings, self.embedding_layers):
            values[emb.top] = layer(values[emb.bottom], combiner=emb.combiner)
        logits, preds = {}, {}
        for graph_layer, layer in zip(self.graph_layers, self.graph.layers):
            ys = graph_layer([values.get(b) for b in layer.bottoms], training=training)
            if graph_layer.handler.is_loss:
                logits[layer.bottoms[1]], preds[layer.bottoms[1]] = values[layer.bottoms[0]], ys[0]
            for top, y in zip(layer.tops, ys):
                values[top] = y
        return logits, preds

    def call(self, inputs, training=None):
        logits, preds = self._forward(inputs, bool(training))
        out = {}
        for o in self.graph.outputs:
            pred = tf.identity(preds[o.name], name=keras_name(o.name))
            try:  # Keras' convention: losses read a sigmoid/softmax output's logits
                pred._keras_logits = logits[o.name]
            except AttributeError:  # a tensor type that takes no attributes: see HugeCTRLoss
                pass
            out[o.name] = pred
        return out

    @property
    def _default_save_signature(self):
        # Keras would trace one with float32 inputs; export_saved_model adds the real one
        return None

    # ---------------------------------------------------------------- losses
    def hugectr_losses(self) -> dict:
        """``{label: HugeCTRLoss}`` for ``compile(loss=...)``."""
        return {name: HugeCTRLoss(self, name) for name in self.loss_layers}

    def layer_loss(self, label: str, logits, y):
        """HugeCTR's loss of one loss layer from its logits, with the layer's regularizer
        (``rterm`` over every dense-file tensor, as HugeCTR adds it in training)."""
        handler, layer = self.loss_layers[label]
        y = tf.cast(tf.convert_to_tensor(y), logits.dtype)
        value = handler.loss(layer, OPS, logits, y)
        if layer.params.get("regularizer"):
            weights = [w.value for g in self.graph_layers for w in g.trainable_weights]
            batch = tf.cast(tf.shape(logits)[0], logits.dtype)
            term = handler.regularization(layer, OPS, weights, batch)
            value = value if term is None else value + term
        return value

    def hugectr_loss(self, inputs, labels, training: bool = True):
        """HugeCTR's total training loss (label-weighted sum) for eager training loops."""
        logits, _ = self._forward(inputs, training)
        return sum(self.label_weights[name] * self.layer_loss(name, logits[name], labels[name])
                   for name in self.loss_layers)

    def compile(self, optimizer="adam", loss=None, loss_weights=None, **kwargs):
        if loss is None:
            loss = self.hugectr_losses()
            loss_weights = loss_weights or dict(self.label_weights)
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, **kwargs)

    # ---------------------------------------------------------------- back to the IR
    def to_graph(self) -> Graph:
        """The IR with the current weights and tables (for HugeCTR's writers)."""
        import copy

        from ..ir import EmbeddingTable

        graph = copy.copy(self.graph)
        graph.layers = [copy.copy(l) for l in self.graph.layers]
        for layer, graph_layer in zip(graph.layers, self.graph_layers):
            layer.weights = {k: v.numpy() for k, v in graph_layer.params.items()}
        graph.embeddings = [copy.copy(e) for e in self.graph.embeddings]
        tables = {}  # a table shared by collection lookups stays one object
        for emb, layer in zip(graph.embeddings, self.embedding_layers):
            if id(layer) not in tables:
                t = layer.table()
                tables[id(layer)] = EmbeddingTable(t["keys"], t["vectors"], t.get("slot_ids"))
            emb.table = tables[id(layer)]
        return graph

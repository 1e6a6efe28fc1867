"""A HugeCTR sparse embedding as a Keras layer with HugeCTR's key semantics, in-graph.

* Any int64 key. The key -> row map lives in the graph: the keys are a non-trainable int64
  variable sorted within each GPU group and searched with ``tf.searchsorted``, so a
  SavedModel serves raw keys and the keys travel in ``variables/`` (no 2 GB graph limit, as
  constants of a ``StaticHashTable`` initializer would have). Unseen keys give zeros.
* ``sum`` of the found rows per slot; ``mean`` divides by the count of non-padding keys
  (unseen keys included), as HugeCTR's combiner does; ``concat`` (embedding collections)
  puts the slot's rows side by side. Lookups of a collection that share a table call one
  layer with their own combiner.
* Localized tables whose keys repeat across GPUs look a slot up among the keys of its GPU
  (``slot_id % num_gpus == slot % num_gpus``), like the converter.
* The vectors are one trainable variable; ``tf.gather`` gives it ``IndexedSlices``
  gradients, so optimizers touch only the rows of the batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import keras


def from_array(array):
    """A Keras initializer giving ``array``'s values."""
    def init(shape, dtype=None):
        return tf.constant(np.ascontiguousarray(array).reshape(shape), dtype=dtype)
    return init


class HugeCTREmbedding(keras.layers.Layer):
    """Weights ``emb_vector`` [K, vec] (trainable), ``key`` [K] int64 and, for Localized
    tables, ``slot_id`` [K] int64; rows ordered by (GPU group, key)."""

    def __init__(self, keys, vectors, *, slot_num: int, combiner: str = "sum",
                 slot_ids=None, num_gpus: int = 1, padding_key: int | None = -1, **kwargs):
        super().__init__(**kwargs)
        keys = np.asarray(keys, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        vectors = vectors.reshape(keys.size, vectors.shape[-1] if vectors.ndim == 2 else -1)
        group = (np.zeros(keys.size, np.int64) if num_gpus == 1 else
                 (np.asarray(slot_ids, dtype=np.uint64) % np.uint64(num_gpus)).astype(np.int64))
        order = np.argsort(keys) if num_gpus == 1 else np.lexsort((keys, group))
        self.slot_num, self.combiner, self.num_gpus = slot_num, combiner, num_gpus
        self.padding_key, self.vec_size = padding_key, int(vectors.shape[1])
        # each group's rows [start, end) and the slots that read it
        bounds = np.searchsorted(group[order], np.arange(num_gpus + 1))
        self.groups = [(int(bounds[g]), int(bounds[g + 1]),
                        [s for s in range(slot_num) if s % num_gpus == g]) for g in range(num_gpus)]
        self.vectors = self.add_weight(shape=vectors.shape, name="emb_vector",
                                       initializer=from_array(vectors[order]))
        self.keys = self.add_weight(shape=keys.shape, dtype="int64", name="key", trainable=False,
                                    initializer=from_array(keys[order]))
        self.slot_ids = None
        if slot_ids is not None:
            self.slot_ids = self.add_weight(
                shape=keys.shape, dtype="int64", name="slot_id", trainable=False,
                initializer=from_array(np.asarray(slot_ids).astype(np.int64)[order]))
        self.built = True

    def _rows(self, keys, start: int, end: int):
        """Row of each key among rows [start, end), and whether it was found."""
        if end == start:
            return tf.zeros_like(keys), tf.zeros(tf.shape(keys), tf.bool)
        sorted_keys = self.keys.value[start:end]
        flat = tf.reshape(keys, [-1])
        pos = tf.minimum(tf.searchsorted(sorted_keys, flat, out_type=tf.int64), end - start - 1)
        found = tf.equal(tf.gather(sorted_keys, pos), flat)
        return tf.reshape(pos + start, tf.shape(keys)), tf.reshape(found, tf.shape(keys))

    def call(self, keys, combiner=None):
        """keys int64 [B, S, N] padded with ``padding_key`` -> [B, S, vec], or with the
        ``concat`` combiner (embedding collections) [B, S, N * vec]: the slot's rows side by
        side, absent and unseen keys as zero rows. ``combiner``: this lookup's, when several
        lookups of an embedding collection share the table (default: the table's own)."""
        combiner = combiner or self.combiner
        keys = tf.cast(keys, tf.int64)
        width = self.vec_size * (keys.shape[2] if combiner == "concat" else 1)
        if self.vectors.shape[0] == 0:  # a dynamic table that never saw a key: zeros
            zero = tf.zeros_like(keys[:, :, :1], dtype=tf.float32)
            return tf.tile(zero, [1, 1, width])
        if self.num_gpus == 1:
            rows, found = self._rows(keys, 0, self.groups[0][1])
        else:
            parts = [self._rows(tf.gather(keys, slots, axis=1), start, end)
                     for start, end, slots in self.groups]
            back = np.argsort(np.concatenate([slots for _, _, slots in self.groups]))
            rows = tf.gather(tf.concat([p[0] for p in parts], 1), back, axis=1)
            found = tf.gather(tf.concat([p[1] for p in parts], 1), back, axis=1)
        present = (tf.ones_like(keys, tf.bool) if self.padding_key is None
                   else tf.not_equal(keys, self.padding_key))
        found = tf.logical_and(found, present)
        vectors = tf.gather(self.vectors.value, rows)  # [B, S, N, vec]
        vectors = tf.where(found[..., None], vectors, tf.zeros_like(vectors))
        if combiner == "concat":
            return tf.reshape(vectors, [-1, keys.shape[1], width])
        total = tf.reduce_sum(vectors, axis=2)
        if combiner == "mean" and keys.shape[2] != 1:
            count = tf.reduce_sum(tf.cast(present, total.dtype), axis=2, keepdims=True)
            total = total / tf.maximum(count, 1.0)
        return total

    def table(self) -> dict:
        """The rows as numpy arrays for HugeCTR's sparse files."""
        t = {"keys": self.keys.numpy(), "vectors": self.vectors.numpy()}
        if self.slot_ids is not None:
            t["slot_ids"] = self.slot_ids.numpy().astype(np.uint64)
        return t

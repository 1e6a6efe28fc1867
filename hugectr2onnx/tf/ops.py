"""``backends.ops.Ops`` in TensorFlow: each op is one or two TF calls (docs/backends.md).

Shapes: ``shape()`` gives python ints where TensorFlow knows the dimension and a scalar
int32 tensor where it does not (the batch of a SavedModel signature or of ``fit``'s last
partial batch), as ``keras.ops.shape`` does; handlers only do arithmetic on such a
dimension, never branch on it. Python scalars adopt the dtype of the tensor they meet.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..backends.ops import Ops


def _pair(a, b):
    """Both as tensors of one dtype: python scalars and integer dimensions adopt the
    floating tensor's dtype."""
    if tf.is_tensor(a) and tf.is_tensor(b):
        if a.dtype != b.dtype:
            if a.dtype.is_floating and not b.dtype.is_floating:
                b = tf.cast(b, a.dtype)
            elif b.dtype.is_floating and not a.dtype.is_floating:
                a = tf.cast(a, b.dtype)
        return a, b
    if tf.is_tensor(a):
        return a, tf.constant(b, dtype=a.dtype)
    if tf.is_tensor(b):
        return tf.constant(a, dtype=b.dtype), b
    return tf.constant(a, tf.float32), tf.constant(b, tf.float32)


def _axes(axis):
    return list(axis) if isinstance(axis, (tuple, list)) else axis


class TFOps(Ops):
    name = "tensorflow"

    def const(self, value, like):
        return tf.constant(np.asarray(value), dtype=like.dtype)

    def to_float(self, x, like):
        return tf.cast(x, like.dtype)

    def add(self, a, b):
        return tf.add(*_pair(a, b))

    def sub(self, a, b):
        return tf.subtract(*_pair(a, b))

    def mul(self, a, b):
        return tf.multiply(*_pair(a, b))

    def div(self, a, b):
        return tf.divide(*_pair(a, b))

    neg = staticmethod(tf.negative)
    abs = staticmethod(tf.abs)
    exp = staticmethod(tf.exp)
    log = staticmethod(tf.math.log)
    log1p = staticmethod(tf.math.log1p)
    sqrt = staticmethod(tf.sqrt)
    tanh = staticmethod(tf.tanh)
    sigmoid = staticmethod(tf.sigmoid)
    logical_and = staticmethod(tf.logical_and)

    def relu(self, x):
        return tf.nn.relu(x)

    def elu(self, x, alpha):
        return tf.where(x >= 0, x, alpha * tf.math.expm1(tf.minimum(x, 0)))

    def maximum(self, a, b):
        return tf.maximum(*_pair(a, b))

    def trunc(self, x):
        return tf.stop_gradient(tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x)))

    def greater(self, a, b):
        return tf.greater(*_pair(a, b))

    def greater_equal(self, a, b):
        return tf.greater_equal(*_pair(a, b))

    def where(self, cond, a, b):
        a, b = _pair(a, b)
        return tf.where(cond, a, b)

    def matmul(self, a, b):
        if a.shape.rank == b.shape.rank:
            return tf.matmul(a, b)
        # np.matmul broadcasting of a lower-rank operand
        rank = max(a.shape.rank, b.shape.rank)
        a = tf.reshape(a, [1] * (rank - a.shape.rank) + _dims(a))
        b = tf.reshape(b, [1] * (rank - b.shape.rank) + _dims(b))
        lead = tf.broadcast_dynamic_shape(tf.shape(a)[:-2], tf.shape(b)[:-2])
        a = tf.broadcast_to(a, tf.concat([lead, tf.shape(a)[-2:]], 0))
        b = tf.broadcast_to(b, tf.concat([lead, tf.shape(b)[-2:]], 0))
        return tf.matmul(a, b)

    def linear(self, x, w, b=None):
        y = tf.matmul(x, w) if x.shape.rank == 2 else tf.tensordot(x, w, [[x.shape.rank - 1], [0]])
        return y if b is None else y + b

    def shape(self, x):
        return tuple(_dims(x))

    def reshape(self, x, shape):
        return tf.reshape(x, list(shape))

    def transpose(self, x, perm):
        return tf.transpose(x, list(perm))

    def expand_dims(self, x, axis):
        return tf.expand_dims(x, axis)

    def concat(self, xs, axis):
        return tf.concat(list(xs), axis)

    def stack(self, xs, axis):
        return tf.stack(list(xs), axis)

    def slice(self, x, axis, start, end):
        axis = axis % x.shape.rank
        return x[(slice(None),) * axis + (slice(start, end),)]

    def take(self, x, indices, axis):
        return tf.gather(x, tf.constant(list(indices), tf.int32), axis=axis)

    def repeat(self, x, repeats, axis):
        return tf.repeat(x, repeats, axis=axis)

    def sum(self, x, axis, keepdims=False):
        return tf.reduce_sum(x, _axes(axis), keepdims=keepdims)

    def mean(self, x, axis, keepdims=False):
        return tf.reduce_mean(x, _axes(axis), keepdims=keepdims)

    def max(self, x, axis, keepdims=False):
        return tf.reduce_max(x, _axes(axis), keepdims=keepdims)

    def softmax(self, x, axis):
        return tf.nn.softmax(x, axis=axis)

    def zeros_like(self, x):
        return tf.zeros_like(x)

    def dropout(self, x, rate, training):
        if not training or rate <= 0:
            return x
        return tf.nn.dropout(x, rate=rate)

    def assign(self, target, value):
        target.assign(tf.reshape(tf.stop_gradient(tf.cast(value, target.dtype)), target.shape))


def _dims(x) -> list:
    """Static dims as ints, unknown ones as scalar tensors."""
    static = x.shape.as_list()
    if all(d is not None for d in static):
        return static
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(static)]


OPS = TFOps()

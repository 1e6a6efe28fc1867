"""The ops namespace: the TensorFlow backend implements every op, with numpy's semantics,
also where the batch is unknown while tracing."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from hugectr2onnx.backends.ops import Ops  # noqa: E402
from hugectr2onnx.tf.ops import OPS, TFOps  # noqa: E402

NAMES = [n for n, f in inspect.getmembers(Ops, inspect.isfunction) if not n.startswith("_")]


def test_every_op_is_implemented():
    missing = [n for n in NAMES if getattr(TFOps, n) is getattr(Ops, n)]
    assert len(NAMES) > 30 and not missing, missing


def t(a):
    return tf.constant(np.asarray(a, np.float64))


def test_ops_follow_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(OPS.matmul(t(a), t(b)).numpy(), np.matmul(a, b))
    m = rng.standard_normal((4, 6))  # np.matmul broadcasting of a 2-D operand
    np.testing.assert_allclose(OPS.matmul(t(a), t(m)).numpy(), np.matmul(a, m))
    np.testing.assert_allclose(OPS.repeat(t(a), 2, 1).numpy(), np.repeat(a, 2, axis=1))
    np.testing.assert_allclose(OPS.take(t(a), [3, 0, 3], 2).numpy(), np.take(a, [3, 0, 3], 2))
    np.testing.assert_allclose(OPS.slice(t(a), -1, 1, 3).numpy(), a[..., 1:3])
    np.testing.assert_allclose(OPS.sum(t(a), (0, 2)).numpy(), a.sum(axis=(0, 2)))
    np.testing.assert_allclose(OPS.max(t(a), -1, keepdims=True).numpy(), a.max(-1, keepdims=True))
    np.testing.assert_allclose(OPS.transpose(t(a), [2, 0, 1]).numpy(), a.transpose(2, 0, 1))
    w, bias, x = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((5, 4))
    np.testing.assert_allclose(OPS.linear(t(x), t(w), t(bias)).numpy(), x @ w + bias)
    np.testing.assert_allclose(OPS.linear(t(a), t(w)).numpy(), a @ w)
    np.testing.assert_allclose(OPS.trunc(t([-1.5, 2.7])).numpy(), [-1, 2])
    np.testing.assert_allclose(OPS.maximum(t([-1.0, 2.0]), 0.0).numpy(), [0, 2])
    np.testing.assert_allclose(OPS.elu(t([-1.0, 2.0]), 0.5).numpy(), [0.5 * np.expm1(-1), 2])
    np.testing.assert_allclose(OPS.sub(1.0, t([0.25])).numpy(), [0.75])  # scalar first
    c = OPS.const(np.arange(3), like=t([1.0]))
    assert c.dtype == tf.float64 and c.numpy().tolist() == [0, 1, 2]


def test_unknown_batch_is_a_tensor_that_arithmetic_accepts():
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)], autograph=False)
    def fn(x):
        n, width = OPS.shape(x)
        assert width == 3 and tf.is_tensor(n)
        return OPS.div(OPS.sum(x, 0), n), OPS.zeros_like(OPS.slice(x, 1, 0, 1))

    mean, zeros = fn(tf.ones([4, 3]))
    np.testing.assert_allclose(mean.numpy(), [1, 1, 1])
    assert zeros.shape == (4, 1) and not zeros.numpy().any()


def test_assign_overwrites_outside_the_gradient():
    target = tf.Variable(tf.zeros(3), trainable=False)
    source = tf.Variable(tf.ones(3))
    with tf.GradientTape() as tape:
        OPS.assign(target, source * 2)
        y = tf.reduce_sum(target * source)
    assert target.numpy().tolist() == [2, 2, 2]
    np.testing.assert_allclose(tape.gradient(y, source).numpy(), [2, 2, 2])  # through target only

"""The ops namespace: the TensorFlow backend implements every op, with numpy's semantics,
also where the batch is unknown while tracing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

sys.path.insert(0, str(Path(__file__).parent.parent / "layers"))
from ops_cases import check_ops_follow_numpy, unimplemented  # noqa: E402

from hugectr2onnx.tf.ops import OPS, TFOps  # noqa: E402


def test_every_op_is_implemented():
    missing = unimplemented(TFOps)
    assert not missing, missing


def test_ops_follow_numpy():
    check_ops_follow_numpy(OPS, lambda a: tf.constant(np.asarray(a, np.float64)))


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

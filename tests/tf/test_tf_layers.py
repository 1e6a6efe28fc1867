"""Every layer in TensorFlow: the handler's forward equals the numpy reference (1e-5), run
eagerly and traced with an unknown batch (as in a SavedModel signature); the training
losses, BatchNorm's running statistics and Dropout follow HugeCTR's kernels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

sys.path.insert(0, str(Path(__file__).parent.parent / "layers"))
from forward_cases import CASES, LABEL, build, ids  # noqa: E402
from layer_harness import make_layer  # noqa: E402

from hugectr2onnx.ir import B, Batch  # noqa: E402
from hugectr2onnx.tf.ops import OPS  # noqa: E402


def tf_params(handler, layer):
    return {s.name: tf.Variable(layer.weights[s.name], trainable=False)
            for s in handler.weight_specs(layer) + handler.ntp_specs(layer)}


def run_traced(handler, layer, xs, kinds, params, training=False):
    """The forward inside a tf.function whose batch dimensions are unknown."""
    specs = [tf.TensorSpec([None if isinstance(d, Batch) else int(d) for d in shape], tf.float32)
             for shape, k in zip(layer.in_shapes, kinds) if k != LABEL]

    @tf.function(input_signature=specs, autograph=False)
    def fn(*args):
        it = iter(args)
        ins = [None if k == LABEL else next(it) for k in kinds]
        return [y for y in handler.forward(layer, OPS, ins, params, training=training)
                if y is not None]

    return fn(*[x for x, k in zip(xs, kinds) if k != LABEL])


@pytest.mark.parametrize("case", CASES, ids=ids())
def test_inference_equals_reference(case):
    handler, layer, xs, kinds = build(case)
    want = handler.reference(layer, [None if k == LABEL else x for x, k in zip(xs, kinds)])
    params = tf_params(handler, layer)
    eager = handler.forward(layer, OPS, [None if k == LABEL else tf.constant(x)
                                         for x, k in zip(xs, kinds)], params)
    traced = run_traced(handler, layer, xs, kinds, params)
    assert len(eager) == len(layer.tops)
    for got in (eager, traced):
        for g, w in zip(got, want):
            assert g.dtype == tf.float32
            assert tuple(g.shape) == np.shape(w)
            np.testing.assert_allclose(g.numpy(), w, rtol=0, atol=1e-5)


def _bce(x, y):  # HugeCTR's BinaryCrossEntropy_Kernel, both branches
    x, y = x.astype(np.float64), y.astype(np.float64)
    return np.where(x >= 0, x * (1 - y) + np.log(1 + np.exp(-x)), -x * y + np.log(1 + np.exp(x)))


def test_training_losses_follow_hugectr_kernels():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 4, (16, 3)).astype(np.float32)
    y = rng.integers(0, 2, (16, 3)).astype(np.float32)

    def loss(kind, block, logits, label):
        handler, layer = make_layer(kind, block, [(B, logits.shape[1]), (B, label.shape[1])])
        return float(handler.loss(layer, OPS, tf.constant(logits), tf.constant(label)))

    np.testing.assert_allclose(loss("BinaryCrossEntropyLoss", {}, x[:, :1], y[:, :1]),
                               _bce(x[:, :1], y[:, :1]).mean(), rtol=1e-5)
    # CrossEntropy: -log of the softmax of the labelled class, class 1 where label >= 0.5
    two = x[:, :2].astype(np.float64)
    p = np.exp(two) / np.exp(two).sum(1, keepdims=True)
    picked = np.where(y[:, 0] >= 0.5, p[:, 1], p[:, 0])
    np.testing.assert_allclose(loss("CrossEntropyLoss", {}, x[:, :2], y[:, :1]),
                               -np.log(picked).mean(), rtol=1e-5)
    # MultiCrossEntropy: labels below -0.5 are ignored, the sum still divided by B*L
    y_ignored = np.where(rng.random(y.shape) < 0.3, -1.0, y).astype(np.float32)
    w = np.array([1.0, 0.5, 2.0])
    want = np.where(y_ignored < -0.5, 0.0, w * _bce(x, y_ignored)).sum() / y.size
    np.testing.assert_allclose(loss("MultiCrossEntropyLoss", {"target_weight": w.tolist()},
                                    x, y_ignored), want, rtol=1e-5)


def test_batchnorm_training_uses_batch_statistics_and_updates_running_ones():
    factor, eps = 0.1, 1e-5
    handler, layer = make_layer("BatchNorm", {"bn_param": {"factor": factor, "eps": eps}}, [(B, 3)])
    rng = np.random.default_rng(0)
    layer.weights = {"gamma": np.ones(3, np.float32), "beta": np.zeros(3, np.float32),
                     "mean": rng.uniform(-1, 1, 3).astype(np.float32),
                     "var": rng.uniform(0.5, 1.5, 3).astype(np.float32)}
    x = rng.normal(2, 3, (32, 3)).astype(np.float32)
    params = tf_params(handler, layer)
    (y,) = run_traced(handler, layer, [x], ["x"], params, training=True)  # unknown batch
    want = (x - x.mean(0)) / np.sqrt(x.var(0) + eps)
    np.testing.assert_allclose(y.numpy(), want, atol=1e-4)
    np.testing.assert_allclose(params["mean"].numpy(),
                               (1 - factor) * layer.weights["mean"] + factor * x.mean(0), atol=1e-5)
    np.testing.assert_allclose(params["var"].numpy(),
                               (1 - factor) * layer.weights["var"] + factor * x.var(0, ddof=1),
                               rtol=1e-5)


def test_dropout_drops_at_its_rate_in_training_only():
    handler, layer = make_layer("Dropout", {"rate": 0.25}, [(B, 1000)])
    x = np.ones((8, 1000), np.float32)
    (y,) = handler.forward(layer, OPS, [tf.constant(x)], {}, training=True)
    y = y.numpy()
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    (z,) = handler.forward(layer, OPS, [tf.constant(x)], {}, training=False)
    np.testing.assert_array_equal(z.numpy(), x)

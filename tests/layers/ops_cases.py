"""Checks shared by the trainable backends' ops tests: every op of ``backends/ops.py`` is
implemented, and each follows numpy's semantics."""

from __future__ import annotations

import inspect

import numpy as np

from hugectr2onnx.backends.ops import Ops

NAMES = [n for n, f in inspect.getmembers(Ops, inspect.isfunction) if not n.startswith("_")]


def unimplemented(backend_class) -> list[str]:
    """The ops ``backend_class`` inherits unchanged from ``Ops`` (which raise)."""
    assert len(NAMES) > 30  # the namespace is found
    return [n for n in NAMES if getattr(backend_class, n) is getattr(Ops, n)]


def check_ops_follow_numpy(ops, t) -> None:
    """``t``: a float64 numpy array (or list) to the backend's tensor (with ``.numpy()``)."""
    rng = np.random.default_rng(0)
    close = np.testing.assert_allclose
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    close(ops.matmul(t(a), t(b)).numpy(), np.matmul(a, b))
    m = rng.standard_normal((4, 6))  # np.matmul broadcasting of a 2-D operand
    close(ops.matmul(t(a), t(m)).numpy(), np.matmul(a, m))
    close(ops.repeat(t(a), 2, 1).numpy(), np.repeat(a, 2, axis=1))
    close(ops.take(t(a), [3, 0, 3], 2).numpy(), np.take(a, [3, 0, 3], 2))
    close(ops.slice(t(a), -1, 1, 3).numpy(), a[..., 1:3])
    close(ops.sum(t(a), (0, 2)).numpy(), a.sum(axis=(0, 2)))
    close(ops.max(t(a), -1, keepdims=True).numpy(), a.max(-1, keepdims=True))
    close(ops.transpose(t(a), [2, 0, 1]).numpy(), a.transpose(2, 0, 1))
    w, bias, x = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((5, 4))
    close(ops.linear(t(x), t(w), t(bias)).numpy(), x @ w + bias)
    close(ops.linear(t(a), t(w)).numpy(), a @ w)
    close(ops.trunc(t([-1.5, 2.7])).numpy(), [-1, 2])
    close(ops.maximum(t([-1.0, 2.0]), 0.0).numpy(), [0, 2])
    close(ops.elu(t([-1.0, 2.0]), 0.5).numpy(), [0.5 * np.expm1(-1), 2])
    close(ops.sub(1.0, t([0.25])).numpy(), [0.75])  # scalar first
    c = ops.const(np.arange(3), like=t([1.0]))
    assert c.numpy().dtype == np.float64 and c.numpy().tolist() == [0, 1, 2]

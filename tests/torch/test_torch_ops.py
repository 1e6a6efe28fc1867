"""The ops namespace: the torch backend implements every op, with numpy's semantics."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hugectr2onnx.backends.ops import Ops  # noqa: E402
from hugectr2onnx.torch.ops import OPS, TorchOps  # noqa: E402

NAMES = [n for n, f in inspect.getmembers(Ops, inspect.isfunction) if not n.startswith("_")]


def test_every_op_is_implemented():
    missing = [n for n in NAMES if getattr(TorchOps, n) is getattr(Ops, n)]
    assert len(NAMES) > 30 and not missing, missing


def t(a):
    return torch.tensor(np.asarray(a, np.float64))


def test_ops_follow_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(OPS.matmul(t(a), t(b)).numpy(), np.matmul(a, b))
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
    c = OPS.const(np.arange(3), like=t([1.0]))
    assert c.dtype == torch.float64 and c.tolist() == [0, 1, 2]


def test_assign_overwrites_outside_autograd():
    target = torch.zeros(3)
    source = torch.ones(3, requires_grad=True) * 2
    OPS.assign(target, source)
    assert target.tolist() == [2, 2, 2] and not target.requires_grad

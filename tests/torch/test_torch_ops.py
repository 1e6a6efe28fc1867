"""The ops namespace: the torch backend implements every op, with numpy's semantics."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parent.parent / "layers"))
from ops_cases import check_ops_follow_numpy, unimplemented  # noqa: E402

from hugectr2onnx.torch.ops import OPS, TorchOps  # noqa: E402


def test_every_op_is_implemented():
    missing = unimplemented(TorchOps)
    assert not missing, missing


def test_ops_follow_numpy():
    check_ops_follow_numpy(OPS, lambda a: torch.tensor(np.asarray(a, np.float64)))


def test_assign_overwrites_outside_autograd():
    target = torch.zeros(3)
    source = torch.ones(3, requires_grad=True) * 2
    OPS.assign(target, source)
    assert target.tolist() == [2, 2, 2] and not target.requires_grad

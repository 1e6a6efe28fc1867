"""Every layer: the torch forward in eval() equals the numpy reference (1e-5), and its
gradients match finite differences (float64 gradcheck) for inputs and parameters."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).parent.parent / "layers"))
from forward_cases import CASES, LABEL, X, build, ids  # noqa: E402

from hugectr2onnx.layers.base import default_registry  # noqa: E402
from hugectr2onnx.torch.ops import OPS  # noqa: E402


def torch_params(handler, layer, dtype, grad=False):
    names = [s.name for s in handler.weight_specs(layer)]
    params = {}
    for spec in handler.weight_specs(layer) + handler.ntp_specs(layer):
        t = torch.tensor(layer.weights[spec.name], dtype=dtype)
        params[spec.name] = t.requires_grad_(grad and spec.name in names)
    return params


@pytest.mark.parametrize("case", CASES, ids=ids())
def test_eval_equals_reference(case):
    handler, layer, xs, kinds = build(case)
    want = handler.reference(layer, [None if k == LABEL else x for x, k in zip(xs, kinds)])
    txs = [None if k == LABEL else torch.from_numpy(x) for x, k in zip(xs, kinds)]
    got = handler.forward(layer, OPS, txs, torch_params(handler, layer, torch.float32))
    assert len(got) == len(layer.tops)  # the reference leaves out gradient-buffer tops
    for g, w in zip(got, want):
        assert g.dtype == torch.float32
        assert tuple(g.shape) == np.shape(w)
        np.testing.assert_allclose(g.numpy(), w, rtol=0, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=ids())
def test_gradients_match_finite_differences(case):
    handler, layer, xs, kinds = build(case)
    if case[0] == "SequenceMask":
        pytest.skip("a 0/1 mask of truncated lengths has no gradient")
    params = torch_params(handler, layer, torch.float64, grad=True)
    trainable = [k for k, v in params.items() if v.requires_grad]
    diff = [i for i, k in enumerate(kinds) if k == X]
    txs = [torch.tensor(x, dtype=torch.float64, requires_grad=k == X) if k != LABEL else None
           for x, k in zip(xs, kinds)]

    def fn(*args):
        ins = list(txs)
        for i, a in zip(diff, args[:len(diff)]):
            ins[i] = a
        ps = dict(params, **dict(zip(trainable, args[len(diff):])))
        outs = handler.forward(layer, OPS, ins, ps)
        return tuple(o for o in outs if o is not None)

    inputs = tuple(txs[i] for i in diff) + tuple(params[k] for k in trainable)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_every_registered_layer_has_a_forward_and_a_case_here():
    from hugectr2onnx.layers.base import LayerHandler

    registry = default_registry()
    missing = [t for t in registry.types
               if type(registry.get(t)).forward is LayerHandler.forward]
    assert not missing, f"layers without a trainable forward: {missing}"
    untested = sorted(set(registry.types) - {c[0] for c in CASES})
    assert not untested, f"layers without a torch test case: {untested}"

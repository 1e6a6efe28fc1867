import math

import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def _layer(alpha=0.25, eps=1e-5, key="alpha"):
    return make_layer("PReLU_Dice", {"prelu_dice_param": {key: alpha, "eps": eps}}, [(B, 2)])


def test_known_answer_batch_statistics():
    # Column 0 holds 1 and 3: mean 2, E[x^2] = 5, var = 1, std = 1 (eps 0), s = 1/(1+e).
    # x=1: p = s, y = s + (1-s)/4.  x=3: p = 1/(1+e^-1) = 1-s, y = 3*((1-s) + s/4).
    # Column 1 holds 0 and 2: also std 1; y = 0 and 2*((1-s) + s/4).
    h, layer = _layer(alpha=0.25, eps=0.0)
    x = np.array([[1, 0], [3, 2]], np.float32)
    s = 1 / (1 + math.e)
    np.testing.assert_allclose(h.reference(layer, [x])[0],
                               [[s + (1 - s) / 4, 0], [3 * ((1 - s) + s / 4), 2 * ((1 - s) + s / 4)]],
                               rtol=1e-6)


def test_eps_enters_the_std():
    # A constant column 5, 5 has var 0; eps 1 gives std 1, p = 1/2: y = 5*(1/2 + 1/8).
    h, layer = _layer(alpha=0.25, eps=1.0)
    x = np.array([[5, 1], [5, 3]], np.float32)
    np.testing.assert_allclose(h.reference(layer, [x])[0][:, 0], [5 * 0.625] * 2, rtol=1e-6)


def test_batch_of_one_gives_half_gate():
    h, layer = _layer(alpha=-0.5)
    x = np.array([[2.0, -4.0]], np.float32)
    np.testing.assert_allclose(h.reference(layer, [x])[0], [[0.5, -1.0]], rtol=1e-6)


def test_elu_alpha_key_accepted():
    _, layer = _layer(alpha=0.3, key="elu_alpha")
    assert layer.params["alpha"] == pytest.approx(0.3)


def test_missing_alpha():
    with pytest.raises(Exception, match="alpha"):
        make_layer("PReLU_Dice", {"prelu_dice_param": {"eps": 1e-5}}, [(B, 2)])


def test_needs_2d():
    with pytest.raises(Exception, match="2-D"):
        make_layer("PReLU_Dice", {"prelu_dice_param": {"alpha": 0.1, "eps": 1e-5}}, [(B, 2, 2)])


@pytest.mark.parametrize("batch", [1, 2, 7])
@pytest.mark.parametrize("opset", [13, 18])
def test_emission_same_batch(batch, opset, rng):
    h, layer = _layer(alpha=0.2)
    x = (rng.standard_normal((batch, 2)) * 3 + 1).astype(np.float32)
    check_layer(h, layer, [x], opset=opset)


@pytest.mark.parametrize("key", ["alpha", "elu_alpha"])
def test_roundtrip(roundtrip, key):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 8})
         .dense("PReLU_Dice", "fc1", "dice", prelu_dice_param={key: 0.1, "eps": 1e-3})
         .dense("InnerProduct", "dice", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b, batch=16)
    roundtrip(b, batch=3, seed=1)

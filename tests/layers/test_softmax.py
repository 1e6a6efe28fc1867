import math

import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def test_known_answer_single_input():
    h, layer = make_layer("Softmax", {"factor": 1.0}, [(B, 2, 2)])
    x = np.array([[[0, math.log(3)], [1, 1]]], np.float32)
    np.testing.assert_allclose(h.reference(layer, [x])[0], [[[0.25, 0.75], [0.5, 0.5]]],
                               rtol=1e-6)


def test_single_input_ignores_factor():
    h, layer = make_layer("Softmax", {"factor": 3.0}, [(B, 2)])
    x = np.array([[0, math.log(3)]], np.float32)
    np.testing.assert_allclose(h.reference(layer, [x])[0], [[0.25, 0.75]], rtol=1e-6)


def test_known_answer_masked_with_factor():
    # factor 2: z = [0, ln 3, 10 - 10000]; e^(z - ln 3) = [1/3, 1, ~0]; denominator 4/3 + 1e-6
    h, layer = make_layer("Softmax", {"factor": 2.0}, [(B, 1, 1, 3), (B, 1, 1, 3)])
    x = np.array([[[[0, math.log(3) / 2, 5]]]], np.float32)
    mask = np.array([[[[1, 1, 0]]]], np.float32)
    d = 4 / 3 + 1e-6
    np.testing.assert_allclose(h.reference(layer, [x, mask])[0], [[[[1 / 3 / d, 1 / d, 0]]]],
                               rtol=1e-6, atol=1e-30)


def test_fully_masked_row_is_plain_softmax_of_scaled_logits():
    h, layer = make_layer("Softmax", {"factor": 0.5}, [(B, 1, 1, 2), (B, 1, 1, 2)])
    x = np.array([[[[0, 2 * math.log(3)]]]], np.float32)
    y = h.reference(layer, [x, np.zeros_like(x)])[0]
    # HugeCTR forms the logits in float32: ln 3 - 10000 is rounded to a multiple of 2^-10.
    gap = float(np.float32(math.log(3) - 10000)) + 10000
    p0 = 1 / (1 + math.exp(gap))
    np.testing.assert_allclose(y, [[[[p0, 1 - p0]]]], rtol=1e-6)
    np.testing.assert_allclose(y, [[[[0.25, 0.75]]]], rtol=1e-4)


@pytest.mark.parametrize("shape", [(B, 5), (B, 3, 4), (B, 2, 3, 4)])
@pytest.mark.parametrize("opset", [13, 21])
def test_single_input_emission_normalizes_last_axis(shape, opset, rng):
    h, layer = make_layer("Softmax", {"factor": 1.0}, [shape])
    x = rng.standard_normal((3,) + shape[1:]).astype(np.float32)
    y = check_layer(h, layer, [x], opset=opset)[0]
    np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=1e-5)


@pytest.mark.parametrize("mask_rows", [5, 1])  # [B,1,Lf,Lt] and the old [B,1,1,L]
@pytest.mark.parametrize("opset", [13, 17, 18])
def test_masked_emission(mask_rows, opset, rng):
    h, layer = make_layer("Softmax", {"factor": 0.35}, [(B, 2, 5, 4), (B, 1, mask_rows, 4)])
    x = rng.standard_normal((3, 2, 5, 4)).astype(np.float32) * 4
    mask = (rng.random((3, 1, mask_rows, 4)) < 0.6).astype(np.float32)
    mask[0] = 0  # a fully masked sample
    check_layer(h, layer, [x, mask], opset=opset)


@pytest.mark.parametrize("shapes", [[(B, 2, 3), (B, 1, 3)],
                                    [(B, 2, 3, 3), (B, 2, 3, 3)],
                                    [(B, 2, 3, 3), (B, 1, 2, 3)],
                                    [(B, 2, 3, 3), (B, 1, 3, 4)]])
def test_masked_shape_mismatch(shapes):
    with pytest.raises(Exception, match="masked softmax needs"):
        make_layer("Softmax", {"factor": 1.0}, shapes)


def test_roundtrip_single_input(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Softmax", "e", "p", factor=1.0)
         .dense("Reshape", "p", "flat", leading_dim=12)
         .dense("InnerProduct", "flat", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)

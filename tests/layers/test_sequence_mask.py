import numpy as np
import pytest

from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

NEW = {"max_sequence_len_from": 3, "max_sequence_len_to": 4}


def test_known_answer_two_inputs_truncates_lengths():
    h, layer = make_layer("SequenceMask", NEW, [(B, 1), (B, 1)])
    assert layer.out_shapes == [(B, 1, 3, 4)]
    frm = np.array([[2.7], [0.0]], np.float32)
    to = np.array([[1.0], [3.2]], np.float32)
    y = h.reference(layer, [frm, to])[0]
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0, 0], [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(y[1, 0], np.zeros((3, 4)))


def test_known_answer_old_one_input_form():
    h, layer = make_layer("SequenceMask", {"max_sequence_len": 3}, [(B, 1)])
    assert layer.out_shapes == [(B, 1, 1, 3)]
    y = h.reference(layer, [np.array([[2.9], [-1.5]], np.float32)])[0]
    np.testing.assert_array_equal(y, [[[[1, 1, 0]]], [[[0, 0, 0]]]])


LENGTHS = np.array([[-1.5], [-0.5], [0], [0.5], [1], [2.999], [3], [4.0001], [10]], np.float32)


@pytest.mark.parametrize("opset", [13, 21])
def test_emission_two_inputs(opset):
    h, layer = make_layer("SequenceMask", NEW, [(B, 1), (B, 1)])
    check_layer(h, layer, [LENGTHS, LENGTHS[::-1].copy()], opset=opset, atol=0)


def test_emission_same_tensor_twice():
    h, layer = make_layer("SequenceMask", {"max_sequence_len_from": 4, "max_sequence_len_to": 4},
                          [(B, 1), (B, 1)], bottoms=["len", "len"])
    y = check_layer(h, layer, [LENGTHS, LENGTHS], atol=0)[0]
    np.testing.assert_array_equal(y[6, 0], [[1] * 3 + [0]] * 3 + [[0] * 4])  # length 3


def test_emission_old_form():
    h, layer = make_layer("SequenceMask", {"max_sequence_len": 5}, [(B, 1)])
    check_layer(h, layer, [LENGTHS], atol=0)


@pytest.mark.parametrize("block, n_in, msg", [(NEW, 1, "two-input"),
                                              ({"max_sequence_len": 3}, 2, "one-input"),
                                              ({}, 1, "missing field"),
                                              ({"max_sequence_len_from": 2}, 2, "missing field")])
def test_bad_params(block, n_in, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("SequenceMask", block, [(B, 1)] * n_in)


def test_lengths_must_be_b_by_1():
    with pytest.raises(Exception, match=r"\[B, 1\]"):
        make_layer("SequenceMask", NEW, [(B, 2), (B, 1)])

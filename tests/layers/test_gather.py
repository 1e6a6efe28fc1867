import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def test_known_answer_rows_of_the_batch():
    h, layer = make_layer("Gather", {"indices": [2, 0, 2]}, [(B, 2)])
    assert layer.out_shapes == [(3, 2)]
    x = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    np.testing.assert_array_equal(h.reference(layer, [x])[0], [[5, 6], [1, 2], [5, 6]])


@pytest.mark.parametrize("block, msg", [({"indices": []}, "at least 1"),
                                        ({"indices": [-1]}, "outside"),
                                        ({}, "missing field 'indices'")])
def test_bad_indices(block, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("Gather", block, [(B, 2)])


def test_needs_2d():
    with pytest.raises(Exception, match="2-D"):
        make_layer("Gather", {"indices": [0]}, [(B, 2, 2)])


def test_fixed_leading_dim_is_checked():
    with pytest.raises(Exception, match="exceed"):
        make_layer("Gather", {"indices": [0, 3]}, [(3, 2)])


def test_emission(rng):
    h, layer = make_layer("Gather", {"indices": [4, 1, 1, 0]}, [(B, 3)])
    got = check_layer(h, layer, [rng.standard_normal((5, 3)).astype(np.float32)])
    assert got[0].shape == (4, 3)


def test_roundtrip(roundtrip):
    b = (ModelBuilder().input(dense_dim=5)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": 1})
         .dense("Gather", "fc", "picked", indices=[3, 0, 7])
         .dense("BinaryCrossEntropyLoss", ["picked", "label"], "loss"))
    report, *_ = roundtrip(b, batch=8)
    assert report.outputs[0].shape == (3, 1)

import numpy as np
import pytest

from hugectr2onnx.errors import GraphStructureError, GraphConfigError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

A = np.array([[1, 2], [3, -4]], np.float32)
C = np.array([[10, 20], [30, 40]], np.float32)
D = np.array([[0.5, 2], [-1, 0]], np.float32)


def test_known_answers():
    h, layer = make_layer("Add", None, [(B, 2)] * 3)
    np.testing.assert_array_equal(h.reference(layer, [A, C, D])[0], [[11.5, 24], [32, 36]])
    h, layer = make_layer("Sub", None, [(B, 2)] * 2)
    np.testing.assert_array_equal(h.reference(layer, [A, C])[0], [[-9, -18], [-27, -44]])
    h, layer = make_layer("ElementwiseMultiply", None, [(B, 2)] * 3)
    np.testing.assert_array_equal(h.reference(layer, [A, C, D])[0], [[5, 80], [-90, 0]])


@pytest.mark.parametrize("kind", ["Add", "ElementwiseMultiply"])
@pytest.mark.parametrize("n", [2, 4])
def test_n_inputs_3d_emission(kind, n, rng):
    h, layer = make_layer(kind, None, [(B, 3, 5)] * n)
    check_layer(h, layer, [rng.standard_normal((4, 3, 5)).astype(np.float32) for _ in range(n)])


def test_shape_mismatch_rejected():
    with pytest.raises(Exception, match="identical shapes"):
        make_layer("Add", None, [(B, 3), (B, 4)])


@pytest.mark.parametrize("opset", [13, 21])
def test_roundtrip_all_three(roundtrip, opset):
    b = (ModelBuilder().input(dense_dim=8)
         .dense("Slice", "dense", ["a", "b", "c"], ranges=[[0, 4], [2, 6], [4, 8]])
         .dense("Add", ["a", "b", "c"], "sum")
         .dense("Sub", ["sum", "a"], "diff")
         .dense("ElementwiseMultiply", ["diff", "sum"], "prod")
         .dense("InnerProduct", "prod", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b, opset=opset)


def test_sub_takes_exactly_two_inputs():
    b = (ModelBuilder().input(dense_dim=4)
         .dense("Slice", "dense", ["a", "b", "c"], ranges=[[0, 1], [1, 2], [2, 3]])
         .dense("Sub", ["a", "b", "c"], "d")
         .dense("BinaryCrossEntropyLoss", ["d", "label"], "loss"))
    with pytest.raises(GraphConfigError, match="Sub takes 2"):
        b.graph()

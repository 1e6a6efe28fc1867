import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.inner_product import InnerProduct


def test_reference_matches_hand_computation():
    layer = Layer(0, "InnerProduct", ["x"], ["y"], {"num_output": 2})
    layer.weights = {"W": np.array([[1, 2], [3, 4]], np.float32), "b": np.array([[10, 20]], np.float32)}
    y = InnerProduct().reference(layer, [np.array([[1, 1], [0, 2]], np.float32)])[0]
    np.testing.assert_array_equal(y, [[14, 26], [16, 28]])


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_2d_matches_reference(roundtrip, opset):
    b = (ModelBuilder().input(dense_dim=7)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 5})
         .dense("InnerProduct", "fc1", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    roundtrip(b, opset=opset)


def test_3d_input_applies_same_weights_per_row(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=4)])
         .embedding(bottom="s", top="e", vec_size=6)
         .dense("InnerProduct", "e", "fc1", fc_param={"num_output": 3})
         .dense("Reshape", "fc1", "r", leading_dim=12)
         .dense("InnerProduct", "r", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    roundtrip(b)
    roundtrip(b, convert_embedding=True)

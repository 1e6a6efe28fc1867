import numpy as np
import pytest

from hugectr2onnx.errors import GraphConfigError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.layer_norm import LayerNorm

from layer_harness import check_layer, make_layer


def test_reference_matches_hand_computation():
    layer = Layer(0, "LayerNorm", ["x"], ["y"], {"eps": 0.0})
    layer.weights = {"gamma": np.array([2, 1], np.float32), "beta": np.array([0, 1], np.float32)}
    # row [1, 3]: mean 2, biased var 1 -> [-1, 1] -> [-2, 2]; row [5, 5]: var 0 with eps 0 is
    # avoided, so use [0, 4]: mean 2, var 4 -> [-1, 1] -> [-2, 2]
    y = LayerNorm().reference(layer, [np.array([[1, 3], [0, 4]], np.float32)])[0]
    np.testing.assert_allclose(y, [[-2, 2], [-2, 2]], atol=1e-7)


def test_variance_is_biased():
    layer = Layer(0, "LayerNorm", ["x"], ["y"], {"eps": 0.0})
    layer.weights = {"gamma": np.ones(4, np.float32), "beta": np.zeros(4, np.float32)}
    # x = [0, 0, 0, 4]: mean 1, biased var (1+1+1+9)/4 = 3 -> x0 = -1/sqrt(3)
    y = LayerNorm().reference(layer, [np.array([[0, 0, 0, 4]], np.float32)])[0]
    np.testing.assert_allclose(y[0, 0], -1 / np.sqrt(3), rtol=1e-6)


@pytest.mark.parametrize("opset", [13, 16, 17, 21])
def test_roundtrip_2d(roundtrip, opset):
    b = (ModelBuilder().input(dense_dim=5)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 6})
         .dense("LayerNorm", "fc1", "ln", ln_param={"eps": 0.01})
         .dense("InnerProduct", "ln", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    roundtrip(b, opset=opset)


@pytest.mark.parametrize("opset", [13, 17])
def test_roundtrip_3d_embedding(roundtrip, opset):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("LayerNorm", "e", "ln", ln_param={"eps": 0.25})
         .dense("Reshape", "ln", "r", leading_dim=12)
         .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b, opset=opset)
    roundtrip(b, opset=opset, convert_embedding=True)


@pytest.mark.parametrize("opset", [13, 17])
def test_4d_input_in_isolation(opset, rng):
    handler, layer = make_layer("LayerNorm", {"ln_param": {"eps": 1e-3}}, [(B, 2, 3, 5)])
    layer.weights = {"gamma": rng.uniform(0.5, 1.5, 5).astype(np.float32),
                     "beta": rng.uniform(-1, 1, 5).astype(np.float32)}
    check_layer(handler, layer, [rng.standard_normal((3, 2, 3, 5)).astype(np.float32)],
                opset=opset)


def test_negative_eps_is_rejected():
    b = ModelBuilder().input(dense_dim=4).dense("LayerNorm", "dense", "ln", ln_param={"eps": -1.0})
    with pytest.raises(GraphConfigError, match="eps"):
        b.graph()

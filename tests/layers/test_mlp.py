import numpy as np
import pytest

from hugectr2onnx.errors import GraphConfigError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.mlp import MLP


def test_reference_matches_hand_computation():
    layer = Layer(0, "MLP", ["x"], ["y"], {"num_outputs": [2, 1], "biases": [True, False],
                                            "activations": ["Relu", "None"]})
    layer.weights = {"W0": np.array([[1, -1], [1, 0]], np.float32),
                     "b0": np.array([[1, 1]], np.float32),
                     "W1": np.array([[1], [2]], np.float32),
                     "b1": np.array([[10]], np.float32)}  # stored but unused
    # x=[1,2]: x·W0 = [3,-1], +b0 = [4,0], relu = [4,0]; ·W1 = 4, no bias, no relu
    # x=[-1,-1]: x·W0 = [-2,1], +b0 = [-1,2], relu = [0,2]; ·W1 = 4
    # x=[0,-3]: x·W0 = [-3,0], +b0 = [-2,1], relu = [0,1]; ·W1 = 2
    y = MLP().reference(layer, [np.array([[1, 2], [-1, -1], [0, -3]], np.float32)])[0]
    np.testing.assert_array_equal(y, [[4], [4], [2]])


def test_weight_layout_always_stores_biases():
    b = (ModelBuilder().input(dense_dim=3)
         .dense("MLP", "dense", "m", mlp_param={"num_output": 1, "num_outputs": [4, 2],
                                                "use_bias": False, "activation": "Relu"})
         .dense("InnerProduct", "m", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    layer = b.graph().layers[0]
    specs = [(s.name, s.shape) for s in MLP().weight_specs(layer)]
    assert specs == [("W0", (3, 4)), ("b0", (1, 4)), ("W1", (4, 2)), ("b1", (1, 2))]
    assert layer.out_shapes[0][1] == 2


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_roundtrip_defaults(roundtrip, opset):
    b = (ModelBuilder().input(dense_dim=5)
         .dense("MLP", "dense", "m", mlp_param={"num_output": 1, "num_outputs": [8, 4],
                                                "use_bias": True, "activation": "Relu"})
         .dense("InnerProduct", "m", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b, opset=opset)


def test_roundtrip_per_layer_lists(roundtrip):
    b = (ModelBuilder().input(dense_dim=5)
         .dense("MLP", "dense", "m", mlp_param={"num_output": 1, "num_outputs": [6, 3, 1],
                                                "biases": [True, False, True],
                                                "activations": ["Relu", "None", "None"]})
         .dense("BinaryCrossEntropyLoss", ["m", "label"], "loss"))
    roundtrip(b)


def test_unused_bias_does_not_change_the_output(roundtrip):
    b = (ModelBuilder().input(dense_dim=4)
         .dense("MLP", "dense", "m", mlp_param={"num_output": 1, "num_outputs": [3, 1],
                                                "use_bias": False, "activation": "None"})
         .dense("BinaryCrossEntropyLoss", ["m", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    layer = graph.layers[0]
    assert np.any(layer.weights["b0"] != 0)  # present in the file, ignored by the math
    x = np.ones((2, 4), np.float32)
    want = x @ layer.weights["W0"] @ layer.weights["W1"]
    np.testing.assert_allclose(MLP().reference(layer, [x])[0], want, rtol=1e-6)


def test_dlrm_with_interaction_grad_buffer_as_second_bottom(roundtrip):
    b = (ModelBuilder().input(dense_dim=4, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("MLP", "dense", "bot", mlp_param={"num_output": 1, "num_outputs": [8, 4],
                                                  "use_bias": True, "activation": "Relu"})
         .dense("Interaction", ["bot", "e"], ["inter", "inter_grad"])
         .dense("MLP", ["inter", "inter_grad"], "top",
                mlp_param={"num_output": 1, "num_outputs": [8, 1], "use_bias": True,
                           "activations": ["Relu", "None"]})
         .dense("BinaryCrossEntropyLoss", ["top", "label"], "loss"))
    roundtrip(b)
    roundtrip(b, convert_embedding=True)


@pytest.mark.parametrize("mlp_param, field", [
    ({"num_outputs": [2, 1], "biases": [True]}, "biases"),
    ({"num_outputs": [2, 1], "activations": ["Relu", "Sigmoid"]}, "activations"),
    ({"num_output": 1}, "num_outputs"),
])
def test_bad_params_are_rejected(mlp_param, field):
    b = ModelBuilder().input(dense_dim=4).dense("MLP", "dense", "m", mlp_param=mlp_param)
    with pytest.raises(GraphConfigError, match=field):
        b.graph()

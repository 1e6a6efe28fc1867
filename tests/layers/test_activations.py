import math

import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def _ref(kind, block, x):
    h, layer = make_layer(kind, block, [(B,) + x.shape[1:]])
    return h.reference(layer, [x])[0]


def test_known_answers():
    x = np.array([[-math.log(2), 0, 3]], np.float32)
    np.testing.assert_array_equal(_ref("ReLU", None, x), [[0, 0, 3]])
    np.testing.assert_allclose(_ref("Sigmoid", None, x), [[1 / 3, 0.5, 1 / (1 + math.exp(-3))]],
                               rtol=1e-6)
    # ELU alpha 2: 2*(e^-ln2 - 1) = -1
    np.testing.assert_allclose(_ref("ELU", {"elu_param": {"alpha": 2.0}}, x), [[-1, 0, 3]],
                               rtol=1e-6)
    np.testing.assert_array_equal(_ref("Dropout", {"rate": 0.5}, x), x)
    np.testing.assert_array_equal(_ref("Cast", None, x), x)


def test_elu_default_alpha_and_dropout_rate():
    assert make_layer("ELU", {}, [(B, 2)])[1].params["alpha"] == 1.0
    assert make_layer("Dropout", {}, [(B, 2)])[1].params["rate"] == 0.5


def test_elu_alpha_must_be_a_number():
    with pytest.raises(Exception, match="finite number"):
        make_layer("ELU", {"elu_param": {"alpha": "1"}}, [(B, 2)])


@pytest.mark.parametrize("kind, block", [("ReLU", None), ("Sigmoid", None),
                                         ("ELU", {"elu_param": {"alpha": 0.7}}),
                                         ("Dropout", {"rate": 0.3}), ("Cast", None)])
@pytest.mark.parametrize("shape", [(B, 7), (B, 3, 4)])
def test_emission(kind, block, shape, rng):
    h, layer = make_layer(kind, block, [shape])
    check_layer(h, layer, [3 * rng.standard_normal((5,) + shape[1:]).astype(np.float32)])


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_roundtrip_chain(roundtrip, opset):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 8})
         .dense("ReLU", "fc1", "relu")
         .dense("InnerProduct", "relu", "fc2", fc_param={"num_output": 8})
         .dense("ELU", "fc2", "elu", elu_param={"alpha": 0.5})
         .dense("Dropout", "elu", "drop", rate=0.5)
         .dense("Cast", "drop", "cast")
         .dense("Sigmoid", "cast", "sig")
         .dense("InnerProduct", "sig", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b, opset=opset)

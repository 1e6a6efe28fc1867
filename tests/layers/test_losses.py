import numpy as np
import onnx
import pytest

from hugectr2onnx.errors import GraphStructureError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.losses import CrossEntropyLoss, MultiCrossEntropyLoss


def test_cross_entropy_reference_is_two_way_softmax():
    layer = Layer(0, "CrossEntropyLoss", ["x", "label"], ["loss"])
    # [0, ln 3] -> [1/4, 3/4]; [2, 2] -> [1/2, 1/2]
    y = CrossEntropyLoss().reference(layer, [np.array([[0, np.log(3)], [2, 2]], np.float32), None])
    np.testing.assert_allclose(y[0], [[0.25, 0.75], [0.5, 0.5]], rtol=1e-6)


def test_multi_cross_entropy_reference_is_elementwise_sigmoid():
    layer = Layer(0, "MultiCrossEntropyLoss", ["x", "label"], ["loss"], {"target_weight": [1, 5]})
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4: target weights do not enter the prediction
    y = MultiCrossEntropyLoss().reference(layer, [np.array([[0, np.log(3)]], np.float32), None])
    np.testing.assert_allclose(y[0], [[0.5, 0.75]], rtol=1e-6)


@pytest.mark.parametrize("label_dim", [1, 2])
@pytest.mark.parametrize("opset", [13, 21])
def test_cross_entropy_roundtrip(roundtrip, label_dim, opset):
    b = (ModelBuilder().input(label_dim=label_dim, label_name="click", dense_dim=5)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": 2})
         .dense("CrossEntropyLoss", ["fc", "click"], "loss"))
    _, _, path, _ = roundtrip(b, opset=opset)
    out = onnx.load(str(path)).graph.output
    assert [o.name for o in out] == ["click"]
    assert out[0].type.tensor_type.shape.dim[1].dim_value == 2


def test_multi_cross_entropy_roundtrip(roundtrip):
    b = (ModelBuilder().input(label_dim=3, label_name="tasks", dense_dim=5)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": 3})
         .dense("MultiCrossEntropyLoss", ["fc", "tasks"], "loss", target_weight=[1.0, 2.0, 0.5]))
    _, graph, path, _ = roundtrip(b)
    assert graph.layers[-1].params["target_weight"] == [1.0, 2.0, 0.5]
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["tasks"]


def test_multi_task_graph_outputs_in_label_order(roundtrip):
    b = (ModelBuilder().input(label_dim=[2, 1], label_name=["zeta", "alpha"], dense_dim=4)
         .dense("InnerProduct", "dense", "fc_z", fc_param={"num_output": 2})
         .dense("InnerProduct", "dense", "fc_a", fc_param={"num_output": 2})
         .dense("MultiCrossEntropyLoss", ["fc_z", "zeta"], "loss_z", target_weight=[1.0, 1.0])
         .dense("CrossEntropyLoss", ["fc_a", "alpha"], "loss_a"))
    _, _, path, _ = roundtrip(b)
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["alpha", "zeta"]


def test_target_weight_is_optional(roundtrip):
    b = (ModelBuilder().input(label_dim=2, dense_dim=4)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": 2})
         .dense("MultiCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)


@pytest.mark.parametrize("loss, label_dim, width, kw, match", [
    ("CrossEntropyLoss", 1, 3, {}, "width must be 2"),
    ("MultiCrossEntropyLoss", 2, 2, {"target_weight": [1.0]}, "1 target weights for 2"),
    ("MultiCrossEntropyLoss", 3, 2, {}, "must match"),
])
def test_bad_shapes_are_rejected(loss, label_dim, width, kw, match):
    b = (ModelBuilder().input(label_dim=label_dim, dense_dim=4)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": width})
         .dense(loss, ["fc", "label"], "loss", **kw))
    with pytest.raises(GraphStructureError, match=match):
        b.graph()

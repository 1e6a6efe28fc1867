import numpy as np
import pytest

from hugectr2onnx.errors import GraphConfigError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.fused_inner_product import FusedInnerProduct


def _layer(relu):
    layer = Layer(0, "FusedInnerProduct", ["x"], ["y"], {"num_output": 2, "relu": relu})
    layer.weights = {"W": np.array([[1, -2], [1, 1]], np.float32),
                     "b": np.array([[0, 1]], np.float32)}
    return layer


def test_reference_matches_hand_computation():
    x = np.array([[1, 1], [2, -1]], np.float32)
    # x·W + b = [[2, 0], [1, -4]]: ReLU -> [[2, 0], [1, 0]]
    np.testing.assert_array_equal(FusedInnerProduct().reference(_layer(True), [x])[0],
                                  [[2, 0], [1, 0]])
    np.testing.assert_array_equal(FusedInnerProduct().reference(_layer(False), [x])[0],
                                  [[2, 0], [1, -4]])


def _fc(num, **kw):
    return {"fc_param": {"num_output": num}, **kw}


def test_head_body_tail_chain(roundtrip):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("FusedInnerProduct", "dense", ["h", "h_mask", "h_drelu", "h_db"],
                **_fc(8, position="Head", activation="Relu"))
         .dense("FusedInnerProduct", ["h", "h_mask", "h_drelu", "h_db"],
                ["m", "m_mask", "m_drelu", "m_db"], **_fc(4, position="Body", activation="Relu"))
         .dense("FusedInnerProduct", ["m", "m_mask", "m_drelu", "m_db"], "t",
                **_fc(1, position="Tail", activation="None"))
         .dense("BinaryCrossEntropyLoss", ["t", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert [l.params["relu"] for l in graph.layers[:3]] == [True, True, False]


@pytest.mark.parametrize("position", ["Isolated", "None"])
def test_single_io_positions_apply_relu(roundtrip, position):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("FusedInnerProduct", "dense", "f", **_fc(5, position=position, activation="Relu"))
         .dense("InnerProduct", "f", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert graph.layers[0].params["relu"]


def test_tail_with_relu(roundtrip):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("FusedInnerProduct", "dense", ["h", "h1", "h2", "h3"], **_fc(4, position="Head"))
         .dense("FusedInnerProduct", ["h", "h1", "h2", "h3"], "t",
                **_fc(3, position="Tail", activation="Relu"))
         .dense("InnerProduct", "t", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)


@pytest.mark.parametrize("bottom, top, kw, match", [
    ("dense", "f", dict(position="Body", activation="Relu"), "position Body"),
    ("dense", "f", dict(position="Isolated", activation="None"), "only allowed at position Tail"),
    ("dense", "f", dict(position="Middle"), "position"),
])
def test_bad_position_or_activation(bottom, top, kw, match):
    b = ModelBuilder().input(dense_dim=4).dense("FusedInnerProduct", bottom, top, **_fc(2, **kw))
    with pytest.raises(GraphConfigError, match=match):
        b.graph()


def test_head_reads_interaction_grad_buffer_as_second_bottom(roundtrip):
    b = (ModelBuilder().input(dense_dim=4, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("FusedInnerProduct", "dense", "bot", **_fc(4, position="Isolated"))
         .dense("Interaction", ["bot", "e"], ["inter", "inter_grad"])
         .dense("FusedInnerProduct", ["inter", "inter_grad"], ["h", "h1", "h2", "h3"],
                **_fc(6, position="Head"))
         .dense("FusedInnerProduct", ["h", "h1", "h2", "h3"], "t",
                **_fc(1, position="Tail", activation="None"))
         .dense("BinaryCrossEntropyLoss", ["t", "label"], "loss"))
    roundtrip(b)

import numpy as np
import pytest

from hugectr2onnx.errors import GraphStructureError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.interaction import Interaction


def _ref(mlp, emb):
    layer = Layer(0, "Interaction", ["m", "e"], ["y"])
    return Interaction().reference(layer, [np.array(mlp, np.float32), np.array(emb, np.float32)])[0]


def test_reference_matches_hand_computation():
    # v0=[1,2], v1=[3,1], v2=[2,5]: d01 = 5, d02 = 12, d12 = 11, then one zero
    y = _ref([[1, 2]], [[[3, 1], [2, 5]]])
    np.testing.assert_array_equal(y, [[1, 2, 5, 12, 11, 0]])


def test_order_is_lower_triangle_row_by_row():
    # v0=[1,0], v1=[0,1], v2=[1,1], v3=[2,3]:
    # d01=0, d02=1, d12=1, d03=2, d13=3, d23=5
    y = _ref([[1, 0]], [[[0, 1], [1, 1], [2, 3]]])
    np.testing.assert_array_equal(y, [[1, 0, 0, 1, 1, 2, 3, 5, 0]])


def _dlrm(tops="inter"):
    return (ModelBuilder().input(dense_dim=3, sparse=[dict(top="s", slot_num=4)])
            .embedding(bottom="s", top="e", vec_size=5)
            .dense("InnerProduct", "dense", "bot", fc_param={"num_output": 5})
            .dense("Interaction", ["bot", "e"], tops)
            .dense("InnerProduct", "inter", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_roundtrip_dlrm(roundtrip, opset):
    _, graph, _, _ = roundtrip(_dlrm(), opset=opset)
    inter = next(l for l in graph.layers if l.type == "Interaction")
    assert inter.out_shapes[0][1] == 5 + 5 * 4 // 2 + 1


def test_roundtrip_with_embedding_lookup(roundtrip):
    roundtrip(_dlrm(), convert_embedding=True)


def test_second_top_is_a_grad_buffer_of_the_same_shape(roundtrip):
    _, graph, _, _ = roundtrip(_dlrm(["inter", "inter_grad"]))
    inter = next(l for l in graph.layers if l.type == "Interaction")
    assert inter.out_shapes[0] == inter.out_shapes[1] == graph.shapes["inter_grad"]


def test_width_mismatch_is_rejected():
    b = (ModelBuilder().input(dense_dim=3, sparse=[dict(top="s", slot_num=2)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Interaction", ["dense", "e"], "inter"))
    with pytest.raises(GraphStructureError, match="widths differ"):
        b.graph()

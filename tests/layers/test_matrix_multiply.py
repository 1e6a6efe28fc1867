import numpy as np
import pytest

from hugectr2onnx.errors import GraphStructureError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B, Layer
from hugectr2onnx.layers.matrix_multiply import MatrixMultiply

from layer_harness import check_layer, make_layer


def _ref(a, b):
    layer = Layer(0, "MatrixMultiply", ["a", "b"], ["y"])
    return MatrixMultiply().reference(layer, [np.array(a, np.float32), np.array(b, np.float32)])[0]


def test_2d_by_3d_flattens_the_right_operand():
    # rhs [N=2, G=2, H'=1] flattened to [[1, 2], [3, 4]]; [1, 2]·that = [7, 10] -> [1, 2, 1]
    y = _ref([[1, 2]], [[[1], [2]], [[3], [4]]])
    np.testing.assert_array_equal(y, [[[7], [10]]])


def test_3d_is_batched():
    # sample 0: [1,2]·[[1],[1]] = 3; sample 1: [1,1]·[[2],[5]] = 7
    y = _ref([[[1, 2]], [[1, 1]]], [[[1], [1]], [[2], [5]]])
    np.testing.assert_array_equal(y, [[[3]], [[7]]])


@pytest.mark.parametrize("shapes", [[(B, 3, 4), (B, 4, 2)], [(B, 2, 3, 4), (B, 2, 4, 5)],
                                    [(B, 3), (B, 2, 5)]])
@pytest.mark.parametrize("opset", [13, 21])
def test_in_isolation(shapes, opset, rng):
    handler, layer = make_layer("MatrixMultiply", {}, shapes)
    batch = shapes[0][1] if len(shapes[0]) == 2 else 3  # 2-D x 3-D: rhs dim 0 must equal N
    xs = [rng.standard_normal((batch,) + s[1:]).astype(np.float32) for s in shapes]
    got = check_layer(handler, layer, xs, opset=opset)
    if len(shapes[0]) == 2:
        assert got[0].shape == (3, 2, 5)


def test_roundtrip_3d(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s1", slot_num=2),
                                                   dict(top="s2", slot_num=3)])
         .embedding(bottom="s1", top="e1", vec_size=3)
         .embedding(bottom="s2", top="e2", vec_size=4)
         .dense("MatrixMultiply", ["e1", "e2"], "mm")  # [B,2,3]·[B,3,4] -> [B,2,4]
         .dense("Reshape", "mm", "r", leading_dim=8)
         .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert graph.shapes["mm"][1:] == (2, 4)


def test_roundtrip_2d_by_2d_over_the_batch(roundtrip):
    # HugeCTR multiplies whole tensors: [16, 16]·[16, 4] only works with batch 16
    b = (ModelBuilder().input(dense_dim=16)
         .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 4})
         .dense("MatrixMultiply", ["dense", "fc1"], "mm")
         .dense("InnerProduct", "mm", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    roundtrip(b, batch=16)


def test_roundtrip_2d_by_3d(roundtrip):
    b = (ModelBuilder().input(dense_dim=8, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=2)
         .dense("MatrixMultiply", ["dense", "e"], "mm")  # [8, 8]·[8, 3, 2] -> [8, 3, 2]
         .dense("Reshape", "mm", "r", leading_dim=6)
         .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b, batch=8)


def test_rank_mismatch_is_rejected():
    b = (ModelBuilder().input(dense_dim=4, sparse=[dict(top="s", slot_num=4)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("MatrixMultiply", ["e", "dense"], "mm"))
    with pytest.raises(GraphStructureError, match="2-D, 3-D or 4-D"):
        b.graph()


def test_inner_dimension_mismatch_is_rejected():
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s1", slot_num=2),
                                                   dict(top="s2", slot_num=2)])
         .embedding(bottom="s1", top="e1", vec_size=3)
         .embedding(bottom="s2", top="e2", vec_size=4)
         .dense("MatrixMultiply", ["e1", "e2"], "mm"))
    with pytest.raises(GraphStructureError, match="inner dimensions"):
        b.graph()

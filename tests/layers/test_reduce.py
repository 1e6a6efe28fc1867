import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

X = np.array([[[1, 2], [3, 4], [5, 6]],
              [[0, 1], [0, 1], [0, 1]]], np.float32)  # [2, 3, 2]


@pytest.mark.parametrize("axis, total, mean", [
    (0, [[[1, 3], [3, 5], [5, 7]]], [[[0.5, 1.5], [1.5, 2.5], [2.5, 3.5]]]),
    (1, [[[9, 12]], [[0, 3]]], [[[3, 4]], [[0, 1]]]),
    (2, [[[3], [7], [11]], [[1], [1], [1]]], [[[1.5], [3.5], [5.5]], [[0.5], [0.5], [0.5]]]),
])
def test_known_answers(axis, total, mean):
    h, layer = make_layer("ReduceSum", {"axis": axis}, [(B, 3, 2)])
    np.testing.assert_array_equal(h.reference(layer, [X])[0], total)
    h, layer = make_layer("ReduceMean", {"axis": axis}, [(B, 3, 2)])
    np.testing.assert_array_equal(h.reference(layer, [X])[0], mean)


def test_shapes_keep_dims():
    assert make_layer("ReduceSum", {"axis": 0}, [(B, 3, 2)])[1].out_shapes == [(1, 3, 2)]
    assert make_layer("ReduceMean", {"axis": 2}, [(B, 3, 2)])[1].out_shapes == [(B, 3, 1)]


@pytest.mark.parametrize("kind", ["ReduceSum", "ReduceMean"])
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("opset", [13, 18])
def test_emission(kind, axis, opset, rng):
    h, layer = make_layer(kind, {"axis": axis}, [(B, 4, 3)])
    check_layer(h, layer, [rng.standard_normal((5, 4, 3)).astype(np.float32)], opset=opset)


@pytest.mark.parametrize("axis, shape, msg", [(2, (B, 3), "not below"),
                                              (1, (B, 2, 2, 2), "1-D to 3-D")])
def test_bad_axis_or_rank(axis, shape, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("ReduceSum", {"axis": axis}, [shape])


def test_missing_axis():
    with pytest.raises(Exception, match="missing field 'axis'"):
        make_layer("ReduceMean", {}, [(B, 3)])


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_roundtrip(roundtrip, opset):
    # [B, 5, 4] -> [B, 1, 4] -> [B, 1, 1] -> Reshape [B, 1]
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=5)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("ReduceSum", "e", "sum", axis=1)
         .dense("ReduceMean", "sum", "m", axis=2)
         .dense("Reshape", "m", "m2", leading_dim=1)
         .dense("BinaryCrossEntropyLoss", ["m2", "label"], "loss"))
    roundtrip(b, opset=opset)


def test_roundtrip_batch_axis(roundtrip):
    # Reducing over the batch gives a fixed [1, 1] prediction.
    b = (ModelBuilder().input(dense_dim=3)
         .dense("InnerProduct", "dense", "fc", fc_param={"num_output": 1})
         .dense("ReduceMean", "fc", "avg", axis=0)
         .dense("BinaryCrossEntropyLoss", ["avg", "label"], "loss"))
    report, *_ = roundtrip(b, batch=16)
    assert report.outputs[0].shape == (1, 1)

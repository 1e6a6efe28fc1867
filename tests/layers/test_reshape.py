import numpy as np
import pytest

from hugectr2onnx.errors import GraphConfigError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

X = np.arange(12, dtype=np.float32).reshape(2, 2, 3)  # [B=2, S=2, V=3]


def test_known_answer_leading_dim_splits_the_batch():
    h, layer = make_layer("Reshape", {"leading_dim": 3, "time_step": 0}, [(B, 2, 3)])
    assert layer.out_shapes == [(B * 2, 3)]
    np.testing.assert_array_equal(h.reference(layer, [X])[0],
                                  [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]])


def test_known_answer_leading_dim_flattens():
    h, layer = make_layer("Reshape", {"leading_dim": 6, "time_step": 0}, [(B, 2, 3)])
    assert layer.out_shapes == [(B, 6)]
    np.testing.assert_array_equal(h.reference(layer, [X])[0],
                                  [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])


def test_known_answer_time_step():
    h, layer = make_layer("Reshape", {"leading_dim": 2, "time_step": 3}, [(B, 6)])
    assert layer.out_shapes == [(B, 3, 2)]
    np.testing.assert_array_equal(h.reference(layer, [X.reshape(2, 6)])[0],
                                  [[[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9], [10, 11]]])


def test_known_answer_selected():
    h, layer = make_layer("Reshape", {"selected": [1, 0]}, [(B, 2, 3)])
    assert layer.out_shapes == [(B, 6)]
    np.testing.assert_array_equal(h.reference(layer, [X])[0],
                                  [[3, 4, 5, 0, 1, 2], [9, 10, 11, 6, 7, 8]])


@pytest.mark.parametrize("block, shape, msg", [
    ({"leading_dim": 0, "time_step": 0}, (B, 4), "cannot be recovered"),
    ({}, (B, 4), "cannot be recovered"),
    ({"selected": [2]}, (B, 2, 3), "exceed"),
    ({"selected": [0, 1, 1]}, (B, 2, 3), "only 2"),
    ({"selected": [0]}, (B, 6), "3-D"),
    ({"leading_dim": 4, "time_step": 0}, (3, 5), "divisible"),
])
def test_bad_params(block, shape, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("Reshape", block, [shape])


@pytest.mark.parametrize("block, shape", [({"leading_dim": 3, "time_step": 0}, (B, 4, 3)),
                                          ({"leading_dim": 2, "time_step": 3}, (B, 6)),
                                          ({"selected": [2, 0, 2]}, (B, 3, 4))])
def test_emission(block, shape, rng):
    h, layer = make_layer("Reshape", block, [shape])
    check_layer(h, layer, [rng.standard_normal((3,) + shape[1:]).astype(np.float32)])


def test_roundtrip_batch_changing_leading_dim(roundtrip):
    # [B, S, V] -> [B*S, V] -> per-row FC -> [B*S, 1] -> back to [B, S] -> FC -> [B, 1]
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=5)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Reshape", "e", "rows", leading_dim=4, time_step=0)
         .dense("InnerProduct", "rows", "per_row", fc_param={"num_output": 1})
         .dense("Reshape", "per_row", "back", leading_dim=5, time_step=0)
         .dense("InnerProduct", "back", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert graph.shapes["rows"] == (B * 5, 4) and graph.shapes["back"] == (B, 5)


def test_roundtrip_time_step_and_selected(roundtrip):
    b = (ModelBuilder().input(dense_dim=12)
         .dense("Reshape", "dense", "seq", leading_dim=4, time_step=3)
         .dense("Reshape", "seq", "picked", selected=[2, 0])
         .dense("InnerProduct", "picked", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert graph.shapes["seq"] == (B, 3, 4) and graph.shapes["picked"] == (B, 8)


def test_shape_mode_is_reported_as_lost():
    b = (ModelBuilder().input(dense_dim=4)
         .dense("Reshape", "dense", "r", leading_dim=0, time_step=0)
         .dense("BinaryCrossEntropyLoss", ["r", "label"], "loss"))
    with pytest.raises(GraphConfigError, match="leading_dim"):
        b.graph()

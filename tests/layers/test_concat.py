import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

X = np.array([[[1, 2], [3, 4]]], np.float32)  # [1, 2, 2]
Y = np.array([[[5, 6]]], np.float32)  # [1, 1, 2]
Z = np.array([[[7], [8]]], np.float32)  # [1, 2, 1]


def test_known_answer_2d_ignores_axis():
    h, layer = make_layer("Concat", {"axis": 2}, [(B, 2), (B, 1)])
    assert layer.out_shapes == [(B, 3)]
    y = h.reference(layer, [np.array([[1, 2]], np.float32), np.array([[3]], np.float32)])[0]
    np.testing.assert_array_equal(y, [[1, 2, 3]])


def test_known_answer_3d_axis1():
    h, layer = make_layer("Concat", {"axis": 1}, [(B, 2, 2), (B, 1, 2)])
    assert layer.out_shapes == [(B, 3, 2)]
    np.testing.assert_array_equal(h.reference(layer, [X, Y])[0], [[[1, 2], [3, 4], [5, 6]]])


def test_known_answer_3d_axis2():
    h, layer = make_layer("Concat", {"axis": 2}, [(B, 2, 2), (B, 2, 1)])
    assert layer.out_shapes == [(B, 2, 3)]
    np.testing.assert_array_equal(h.reference(layer, [X, Z])[0], [[[1, 2, 7], [3, 4, 8]]])


def test_missing_axis_means_1():
    _, layer = make_layer("Concat", {}, [(B, 2, 2), (B, 1, 2)])
    assert layer.params["axis"] == 1 and layer.out_shapes == [(B, 3, 2)]


@pytest.mark.parametrize("block, shapes, msg", [
    ({"axis": 0}, [(B, 2, 2), (B, 2, 2)], "axis must be 1 or 2"),
    ({"axis": 1}, [(B, 2, 2), (B, 2, 3)], "disagree outside axis 1"),
    ({"axis": 2}, [(B, 2, 2), (B, 3, 2)], "disagree outside axis 2"),
    ({"axis": 1}, [(B, 2, 2), (B, 4)], "disagree"),
    ({"axis": 1}, [(B, 2, 2, 2)], "2-D or 3-D"),
])
def test_bad_inputs(block, shapes, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("Concat", block, shapes)


@pytest.mark.parametrize("axis", [1, 2])
def test_emission_3d(axis, rng):
    shapes = [(B, 3, 4), (B, 3, 4), (B, 3, 4)]
    h, layer = make_layer("Concat", {"axis": axis}, shapes)
    check_layer(h, layer, [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in shapes])


def _emb_model(concat_params: dict, widths=(4, 4), slots=(3, 2)):
    b = ModelBuilder().input(dense_dim=3, sparse=[dict(top=f"s{i}", slot_num=s)
                                                   for i, s in enumerate(slots)])
    for i, w in enumerate(widths):
        b.embedding(bottom=f"s{i}", top=f"e{i}", vec_size=w)
    return b.dense("Concat", ["e0", "e1"], "cat", **concat_params)


def test_roundtrip_2d(roundtrip):
    b = (ModelBuilder().input(dense_dim=3, sparse=[dict(top="s", slot_num=2)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Reshape", "e", "flat", leading_dim=8)
         .dense("Concat", ["dense", "flat"], "cat", axis=1)
         .dense("InnerProduct", "cat", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)


@pytest.mark.parametrize("params", [{"axis": 1}, {}])  # {}: v3.4/v3.5 JSON without axis
def test_roundtrip_3d_axis1(roundtrip, params):
    b = (_emb_model(params)
         .dense("Reshape", "cat", "flat", leading_dim=20)
         .dense("InnerProduct", "flat", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    block = next(l for l in b.graph_json()["layers"] if l["type"] == "Concat")
    assert ("axis" in block) == bool(params)
    roundtrip(b)


def test_roundtrip_3d_axis2(roundtrip):
    b = (_emb_model({"axis": 2}, widths=(4, 2), slots=(3, 3))
         .dense("Reshape", "cat", "flat", leading_dim=18)
         .dense("InnerProduct", "flat", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)

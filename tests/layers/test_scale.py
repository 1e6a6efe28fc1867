import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

X = np.array([[1, 2, 3], [4, 5, 6]], np.float32)


def test_axis0_repeats_each_element():
    h, layer = make_layer("Scale", {"scale_param": {"axis": 0, "factor": 2.0}}, [(B, 3)])
    assert layer.out_shapes == [(B, 6)]
    np.testing.assert_array_equal(h.reference(layer, [X])[0],
                                  [[1, 1, 2, 2, 3, 3], [4, 4, 5, 5, 6, 6]])


def test_axis1_repeats_each_row():
    h, layer = make_layer("Scale", {"scale_param": {"axis": 1, "factor": 3.0}}, [(B, 3)])
    assert layer.out_shapes == [(B * 3, 3)]
    np.testing.assert_array_equal(h.reference(layer, [X])[0],
                                  [[1, 2, 3]] * 3 + [[4, 5, 6]] * 3)


def test_factor_truncated_like_cpp_int():
    _, layer = make_layer("Scale", {"scale_param": {"axis": 0, "factor": 2.9}}, [(B, 3)])
    assert layer.params["factor"] == 2


@pytest.mark.parametrize("param, msg", [({"axis": 2, "factor": 2.0}, "outside"),
                                        ({"axis": 0, "factor": 0.5}, "at least 1"),
                                        ({"axis": 0}, "missing field 'scale_param.factor'")])
def test_bad_params(param, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("Scale", {"scale_param": param}, [(B, 3)])


def test_needs_2d():
    with pytest.raises(Exception, match="2-D"):
        make_layer("Scale", {"scale_param": {"axis": 0, "factor": 2.0}}, [(B, 2, 3)])


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("opset", [13, 17])
def test_emission(axis, opset, rng):
    h, layer = make_layer("Scale", {"scale_param": {"axis": axis, "factor": 4.0}}, [(B, 5)])
    check_layer(h, layer, [rng.standard_normal((3, 5)).astype(np.float32)], opset=opset)


def test_roundtrip_axis0(roundtrip):
    b = (ModelBuilder().input(dense_dim=4)
         .dense("Scale", "dense", "s", scale_param={"axis": 0, "factor": 3.0})
         .dense("InnerProduct", "s", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)


def test_roundtrip_axis1_then_reshape_back(roundtrip):
    # [B, 4] -> [3B, 4] -> per-row FC [3B, 2] -> Reshape back to [B, 6].
    b = (ModelBuilder().input(dense_dim=4)
         .dense("Scale", "dense", "s", scale_param={"axis": 1, "factor": 3.0})
         .dense("InnerProduct", "s", "fc1", fc_param={"num_output": 2})
         .dense("Reshape", "fc1", "r", leading_dim=6)
         .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert graph.shapes["s"] == (B * 3, 4) and graph.shapes["r"] == (B, 6)

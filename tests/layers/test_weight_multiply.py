import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def test_known_answer():
    h, layer = make_layer("WeightMultiply", {"weight_dims": [2, 3]}, [(B, 2)])
    assert layer.out_shapes == [(B, 6)]
    assert [(s.name, s.shape) for s in h.weight_specs(layer)] == [("W", (2, 3))]
    layer.weights["W"] = np.array([[1, 2, 3], [10, 20, 30]], np.float32)
    y = h.reference(layer, [np.array([[2, -1], [0, 1]], np.float32)])[0]
    np.testing.assert_array_equal(y, [[2, 4, 6, -10, -20, -30], [0, 0, 0, 10, 20, 30]])


@pytest.mark.parametrize("dims, shape, msg", [([3, 2], (B, 2), "must equal the input width"),
                                              ([2], (B, 2), r"\[S, V\]"),
                                              ([2, 2], (B, 2, 2), "2-D")])
def test_bad_dims(dims, shape, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("WeightMultiply", {"weight_dims": dims}, [shape])


def test_emission(rng):
    h, layer = make_layer("WeightMultiply", {"weight_dims": [3, 4]}, [(B, 3)])
    layer.weights["W"] = rng.standard_normal((3, 4)).astype(np.float32)
    check_layer(h, layer, [rng.standard_normal((5, 3)).astype(np.float32)])


def test_roundtrip_weights_from_dense_file(roundtrip):
    # Top-level weight_init is accepted and ignored; W comes from the dense file.
    b = (ModelBuilder().input(dense_dim=3)
         .dense("WeightMultiply", "dense", "wm", weight_dims=[3, 5], weight_init="XavierUniform")
         .dense("InnerProduct", "wm", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, art = roundtrip(b)
    wm = next(l for l in graph.layers if l.type == "WeightMultiply")
    raw = np.fromfile(art.dense_model, dtype="<f4")
    np.testing.assert_array_equal(wm.weights["W"].reshape(-1), raw[:15])

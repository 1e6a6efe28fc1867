import numpy as np
import pytest

from hugectr2onnx.errors import GraphConfigError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def test_known_answer():
    h, layer = make_layer("Select", {"dim": 1, "index": [2, 0]}, [(B, 3, 2)])
    assert layer.out_shapes == [(B, 2, 2)]
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    np.testing.assert_array_equal(h.reference(layer, [x])[0],
                                  [[[4, 5], [0, 1]], [[10, 11], [6, 7]]])


def test_saved_json_without_dim_and_index_explains_how_to_fix():
    b = (ModelBuilder().input(dense_dim=4)
         .dense("Select", "dense", "s")
         .dense("BinaryCrossEntropyLoss", ["s", "label"], "loss"))
    with pytest.raises(GraphConfigError, match="not saved by HugeCTR's graph_to_json.*\"dim\": 1"):
        b.graph()


@pytest.mark.parametrize("block, msg", [({"dim": 0, "index": [0]}, "outside"),
                                        ({"dim": 3, "index": [0]}, "rank"),
                                        ({"dim": 2, "index": [2]}, "exceeds"),
                                        ({"dim": 1, "index": []}, "at least 1")])
def test_bad_params(block, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("Select", block, [(B, 3, 2)])


@pytest.mark.parametrize("dim", [1, 2])
def test_emission(dim, rng):
    h, layer = make_layer("Select", {"dim": dim, "index": [1, 1, 0]}, [(B, 3, 4)])
    check_layer(h, layer, [rng.standard_normal((2, 3, 4)).astype(np.float32)])


def test_roundtrip_with_hand_added_keys(roundtrip):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("Select", "dense", "s", dim=1, index=[5, 0, 2])
         .dense("InnerProduct", "s", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)

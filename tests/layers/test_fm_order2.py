import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def test_known_answer():
    # S = 3 vectors of V = 2: (1, 2), (3, 0), (-1, 1).
    # v=0: sum 3, squares 1+9+1 = 11 -> 0.5*(9-11) = -1; v=1: sum 3, squares 4+0+1 = 5 -> 2
    h, layer = make_layer("FmOrder2", {"out_dim": 2}, [(B, 6)])
    assert layer.out_shapes == [(B, 2)]
    x = np.array([[1, 2, 3, 0, -1, 1]], np.float32)
    np.testing.assert_allclose(h.reference(layer, [x])[0], [[-1, 2]])


def test_width_must_divide():
    with pytest.raises(Exception, match="multiple of out_dim"):
        make_layer("FmOrder2", {"out_dim": 4}, [(B, 6)])


@pytest.mark.parametrize("opset", [13, 18])
def test_emission(opset, rng):
    h, layer = make_layer("FmOrder2", {"out_dim": 4}, [(B, 20)])
    check_layer(h, layer, [rng.standard_normal((6, 20)).astype(np.float32)], opset=opset)


def test_roundtrip(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=5)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Reshape", "e", "flat", leading_dim=20)
         .dense("FmOrder2", "flat", "fm", out_dim=4)
         .dense("ReduceSum", "fm", "y", axis=1)
         .dense("BinaryCrossEntropyLoss", ["y", "label"], "loss"))
    roundtrip(b)

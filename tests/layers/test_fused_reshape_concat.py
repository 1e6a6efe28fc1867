import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer

# Two samples, S = 3 slots; input a has width 1, input b width 2.
A = np.array([[[1], [2], [3]], [[4], [5], [6]]], np.float32)
C = np.array([[[10, 11], [20, 21], [30, 31]], [[40, 41], [50, 51], [60, 61]]], np.float32)


def test_known_answer_item_and_ad():
    h, layer = make_layer("FusedReshapeConcat", None, [(B, 3, 1), (B, 3, 2)], n_tops=2)
    assert layer.out_shapes == [(B * 2, 3), (B, 3)]
    item, ad = h.reference(layer, [A, C])
    np.testing.assert_array_equal(item, [[1, 10, 11], [2, 20, 21], [4, 40, 41], [5, 50, 51]])
    np.testing.assert_array_equal(ad, [[3, 30, 31], [6, 60, 61]])


def test_known_answer_general():
    h, layer = make_layer("FusedReshapeConcatGeneral", None, [(B, 3, 1), (B, 3, 2)])
    assert layer.out_shapes == [(B * 3, 3)]
    np.testing.assert_array_equal(h.reference(layer, [A, C])[0],
                                  [[1, 10, 11], [2, 20, 21], [3, 30, 31],
                                   [4, 40, 41], [5, 50, 51], [6, 60, 61]])


@pytest.mark.parametrize("kind, n_tops", [("FusedReshapeConcat", 2),
                                          ("FusedReshapeConcatGeneral", 1)])
@pytest.mark.parametrize("n_inputs", [1, 3])
def test_emission(kind, n_tops, n_inputs, rng):
    shapes = [(B, 4, w) for w in (2, 3, 1)[:n_inputs]]
    h, layer = make_layer(kind, None, shapes, n_tops=n_tops)
    check_layer(h, layer, [rng.standard_normal((3,) + s[1:]).astype(np.float32) for s in shapes])


@pytest.mark.parametrize("shapes, msg", [([(B, 3, 2), (B, 4, 2)], "agree"),
                                         ([(B, 6)], "3-D"),
                                         ([(B, 1, 2)], "at least 2 slots")])
def test_bad_inputs(shapes, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("FusedReshapeConcat", None, shapes, n_tops=2)


def test_roundtrip_din_style(roundtrip):
    # item [B*(S-1), W] is brought back to [B, (S-1)*W] with a Reshape, as DIN does.
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s1", slot_num=4),
                                                   dict(top="s2", slot_num=4)])
         .embedding(bottom="s1", top="e1", vec_size=3)
         .embedding(bottom="s2", top="e2", vec_size=2)
         .dense("FusedReshapeConcat", ["e1", "e2"], ["item", "ad"])
         .dense("Reshape", "item", "hist", leading_dim=15)
         .dense("Concat", ["hist", "ad"], "cat")
         .dense("InnerProduct", "cat", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    _, graph, _, _ = roundtrip(b)
    assert graph.shapes["item"] == (B * 3, 5) and graph.shapes["hist"] == (B, 15)


def test_roundtrip_general(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s1", slot_num=3)])
         .embedding(bottom="s1", top="e1", vec_size=4)
         .dense("FusedReshapeConcatGeneral", ["e1", "e1"], "rows")
         .dense("InnerProduct", "rows", "per_row", fc_param={"num_output": 2})
         .dense("Reshape", "per_row", "back", leading_dim=6)
         .dense("InnerProduct", "back", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    roundtrip(b)

import numpy as np
import pytest

from hugectr2onnx.errors import GraphConfigError, GraphStructureError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def test_known_answer_overlapping_ranges():
    h, layer = make_layer("Slice", {"ranges": [[0, 2], [1, 4]]}, [(B, 4)], n_tops=2)
    assert layer.out_shapes == [(B, 2), (B, 3)]
    x = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)
    y0, y1 = h.reference(layer, [x])
    np.testing.assert_array_equal(y0, [[1, 2], [5, 6]])
    np.testing.assert_array_equal(y1, [[2, 3, 4], [6, 7, 8]])


def test_3d_slices_last_axis(rng):
    h, layer = make_layer("Slice", {"ranges": [[0, 3], [1, 5], [4, 5]]}, [(B, 2, 5)], n_tops=3)
    assert layer.out_shapes == [(B, 2, 3), (B, 2, 4), (B, 2, 1)]
    check_layer(h, layer, [rng.standard_normal((3, 2, 5)).astype(np.float32)])


@pytest.mark.parametrize("ranges, msg", [
    ([[2, 2]], "empty or reversed"),
    ([[-1, 2]], "outside"),
    ([[1, 3], [0, 4]], "out of order"),
    ([[0, 3], [1, 2]], "out of order"),
    ([], "non-empty"),
    ([[0, 1, 2]], "pair"),
])
def test_bad_ranges(ranges, msg):
    with pytest.raises(Exception, match=msg):
        make_layer("Slice", {"ranges": ranges}, [(B, 4)], n_tops=max(1, len(ranges)))


def test_range_beyond_width():
    with pytest.raises(Exception, match="exceeds the input width"):
        make_layer("Slice", {"ranges": [[0, 5]]}, [(B, 4)])


def test_ranges_and_tops_must_agree():
    with pytest.raises(Exception, match="2 ranges but 1 top"):
        make_layer("Slice", {"ranges": [[0, 1], [1, 2]]}, [(B, 4)], n_tops=1)


def test_roundtrip_user_slice(roundtrip):
    b = (ModelBuilder().input(dense_dim=6)
         .dense("Slice", "dense", ["lo", "hi"], ranges=[[0, 4], [3, 6]])
         .dense("InnerProduct", "lo", "f1", fc_param={"num_output": 1})
         .dense("InnerProduct", "hi", "f2", fc_param={"num_output": 1})
         .dense("Add", ["f1", "f2"], "f")
         .dense("BinaryCrossEntropyLoss", ["f", "label"], "loss"))
    roundtrip(b)


def test_automatic_fanout_copies(roundtrip):
    # dense is read by three layers: the writer inserts HugeCTR's fan-out Slice.
    b = (ModelBuilder().input(dense_dim=5)
         .dense("InnerProduct", "dense", "f1", fc_param={"num_output": 1})
         .dense("InnerProduct", "dense", "f2", fc_param={"num_output": 1})
         .dense("ReduceSum", "dense", "f3", axis=1)
         .dense("Add", ["f1", "f2", "f3"], "f")
         .dense("BinaryCrossEntropyLoss", ["f", "label"], "loss"))
    doc = b.graph_json()
    fan = [l for l in doc["layers"] if l["type"] == "Slice"]
    assert fan == [{"type": "Slice", "bottom": "dense",
                    "top": ["dense_slice0", "dense_slice1", "dense_slice2"],
                    "ranges": [[0, 5]] * 3}]
    import onnx
    _, graph, out, _ = roundtrip(b, optimize=False)  # as emitted: copies are Identities
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("Identity") == 3 and "Slice" not in ops
    _, graph, out, _ = roundtrip(b)  # the default passes bypass them
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "Identity" not in ops and "Slice" not in ops


def test_sliced_labels_for_two_losses(roundtrip):
    # A [B, 2] label split into two single-column labels: the label slice is not needed
    # at inference, and each loss output is named after its label slice.
    b = (ModelBuilder().input(dense_dim=4, label_dim=2)
         .dense("Slice", "label", ["l0", "l1"], ranges=[[0, 1], [1, 2]])
         .dense("Slice", "dense", ["d0", "d1"], ranges=[[0, 4], [0, 4]])
         .dense("InnerProduct", "d0", "p0", fc_param={"num_output": 1})
         .dense("InnerProduct", "d1", "p1", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["p0", "l0"], "loss0")
         .dense("BinaryCrossEntropyLoss", ["p1", "l1"], "loss1"))
    report, *_ = roundtrip(b)
    assert sorted(o.name for o in report.outputs) == ["l0", "l1"]

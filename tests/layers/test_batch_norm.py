import json

import numpy as np
import pytest

from hugectr2onnx import converter
from hugectr2onnx.errors import GraphStructureError, NtpError
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model
from hugectr2onnx.ir import Layer
from hugectr2onnx.layers.batch_norm import BatchNorm


def _bn_model(eps=1e-5):
    return (ModelBuilder().input(dense_dim=6)
            .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 4})
            .dense("BatchNorm", "fc1", "bn", bn_param={"factor": 1.0, "eps": eps})
            .dense("InnerProduct", "bn", "fc2", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))


def test_reference_matches_hand_computation():
    layer = Layer(0, "BatchNorm", ["x"], ["y"], {"eps": 1.0})
    layer.weights = {"gamma": np.array([2, 1], np.float32), "beta": np.array([0, 1], np.float32),
                     "mean": np.array([1, 0], np.float32), "var": np.array([3, 0], np.float32)}
    # y0 = 2*(3-1)/sqrt(3+1) + 0 = 2 ; y1 = 1*(2-0)/sqrt(0+1) + 1 = 3
    y = BatchNorm().reference(layer, [np.array([[3, 2], [1, 0]], np.float32)])[0]
    np.testing.assert_allclose(y, [[2, 3], [0, 1]], atol=1e-7)


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_roundtrip(roundtrip, opset):
    _, graph, _, _ = roundtrip(_bn_model(eps=1e-3), opset=opset)
    bn = next(l for l in graph.layers if l.type == "BatchNorm")
    assert bn.weights["mean"].shape == (4,) and bn.weights["var"].shape == (4,)


def test_fp16_ntp_with_2c_values_uses_the_first_c(roundtrip):
    _, graph, _, art = roundtrip(_bn_model(), save_kw={"fp16_ntp": True})
    entry = json.loads(open(art.ntp_file).read())["layers"][0]
    assert len(entry["mean"]) == 8 and len(entry["var"]) == 8
    bn = next(l for l in graph.layers if l.type == "BatchNorm")
    np.testing.assert_allclose(bn.weights["var"], entry["var"][:4])
    assert not np.any(bn.weights["var"] == 12345.0)


def test_too_short_ntp_list_is_an_error(tmp_path):
    art = save_model(_bn_model(), tmp_path)
    doc = json.loads(open(art.ntp_file).read())
    doc["layers"][0]["var"] = doc["layers"][0]["var"][:3]
    with open(art.ntp_file, "w") as f:
        json.dump(doc, f)
    with pytest.raises(NtpError, match="'var' has 3 values"):
        converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model,
                          ntp_file=art.ntp_file)


def test_missing_ntp_file_is_an_error(tmp_path):
    art = save_model(_bn_model(), tmp_path)
    with pytest.raises(NtpError, match="running statistics"):
        converter.convert(str(tmp_path / "m.onnx"), art.graph_config, art.dense_model)


def test_3d_input_is_rejected():
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=2)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("BatchNorm", "e", "bn", bn_param={"factor": 1.0, "eps": 1e-3}))
    with pytest.raises(GraphStructureError, match="2-D"):
        b.graph()


def _ops(out):
    import onnx
    return [n.op_type for n in onnx.load(str(out)).graph.node]


def test_batchnorm_after_gemm_is_folded_into_it(roundtrip):
    """Checked against the numpy reference of the unfolded layers (roundtrip compares)."""
    _, _, out, _ = roundtrip(_bn_model(eps=1e-3))
    ops = _ops(out)
    assert "BatchNormalization" not in ops and ops.count("Gemm") == 2


def test_batchnorm_on_a_graph_input_stays(roundtrip):
    model = (ModelBuilder().input(dense_dim=6)
             .dense("BatchNorm", "dense", "bn", bn_param={"factor": 1.0, "eps": 0.02})
             .dense("InnerProduct", "bn", "fc2", fc_param={"num_output": 1})
             .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    _, _, out, _ = roundtrip(model)
    assert "BatchNormalization" in _ops(out)


def test_gemm_output_used_twice_is_not_folded(roundtrip):
    model = (ModelBuilder().input(dense_dim=6)
             .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 4})
             .dense("Slice", "fc1", ["f1", "f2"], ranges=[[0, 4], [0, 4]])
             .dense("BatchNorm", "f1", "bn", bn_param={"factor": 1.0, "eps": 3e-4})
             .dense("Add", ["bn", "f2"], "sum")
             .dense("InnerProduct", "sum", "fc2", fc_param={"num_output": 1})
             .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    _, _, out, _ = roundtrip(model)
    assert "BatchNormalization" in _ops(out)


def test_fold_skips_nonpositive_variance():
    from hugectr2onnx.onnx_backend.emitter import OnnxEmitter
    from hugectr2onnx.onnx_backend.optimize import fold_batchnorm
    g = OnnxEmitter()
    g.reserve("x")
    w = g.add_initializer("w", np.ones((3, 2), np.float32))
    y = g.node("Gemm", ["x", w], hint="y")
    stats = [g.add_initializer(k, np.array(v, np.float32))
             for k, v in (("g", [1, 1]), ("b", [0, 0]), ("m", [0, 0]), ("v", [1, -2]))]
    g.node("BatchNormalization", [y, *stats], "out", epsilon=1e-5)
    assert fold_batchnorm(g) == 0
    assert [n.op_type for n in g.nodes] == ["Gemm", "BatchNormalization"]
    g.initializers["v"] = np.array([1, 3], np.float32)
    assert fold_batchnorm(g) == 1
    assert [n.op_type for n in g.nodes] == ["Gemm"] and g.nodes[0].output[0] == "out"
    assert "w" not in g.initializers and "v" not in g.initializers

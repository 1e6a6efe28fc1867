"""The shared math of layers/functions.py, against values worked out by hand."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from hugectr2onnx.layers.functions import MASK_EPS, emit_masked_softmax, masked_softmax, sigmoid
from hugectr2onnx.onnx_backend.emitter import OnnxEmitter


def test_sigmoid_values():
    x = np.array([0.0, np.log(3.0), -np.log(3.0), 800.0, -800.0])
    np.testing.assert_allclose(sigmoid(x), [0.5, 0.75, 0.25, 1.0, 0.0], rtol=0, atol=1e-15)


def test_masked_softmax_by_hand():
    x = np.array([[0.0, np.log(3.0), 5.0]])
    p = masked_softmax(x, np.array([[1.0, 1.0, 0.0]]))  # third entry masked off
    # shifted by the max (log 3): e = [1/3, 1, ~0], sum 4/3
    np.testing.assert_allclose(p, [[(1 / 3) / (4 / 3 + MASK_EPS), 1 / (4 / 3 + MASK_EPS), 0.0]],
                               atol=1e-7)
    uniform = masked_softmax(np.zeros((1, 4)), np.zeros((1, 4)))  # fully masked: near uniform
    np.testing.assert_allclose(uniform, 1 / (4 + MASK_EPS), rtol=1e-12)


def test_emitted_masked_softmax_matches_numpy():
    g = OnnxEmitter()
    g.reserve("x")
    g.reserve("m")
    emit_masked_softmax(g, "x", "m", factor=0.5, out="y")
    shape = [2, 1, 3, 4]
    graph = helper.make_graph(
        g.nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "xm"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in g.initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    m = (rng.random(shape) < 0.7).astype(np.float32)
    y = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x, "m": m})[0]
    want = masked_softmax(x, m, 0.5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)

import numpy as np
import pytest

from hugectr2onnx.errors import GraphStructureError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B, Layer
from hugectr2onnx.layers.gru import GRU

from layer_harness import check_layer, make_layer


def _ref(blob, x, hidden=1, inputs=1, steps=2, batchsize=1):
    layer = Layer(0, "GRU", ["x"], ["y"], {"hidden": hidden, "inputs": inputs, "steps": steps,
                                            "batchsize": batchsize})
    layer.weights = {"weight_space": np.array([blob], np.float32)}
    return GRU().reference(layer, [np.array(x, np.float32).reshape(-1, inputs)])[0]


#       W_r W_z W_n R_r R_z R_n b_r b_z b_n   (cuDNN order, H = E = 1)
PLAIN = [0, 0, 1, 0, 0, 1, 0, 0, 0]


def test_reference_matches_hand_computation():
    # r = z = sigmoid(0) = 1/2 throughout.
    # t0: n = tanh(1·1 + 0) = tanh 1; h1 = (1 - 1/2)·n + 1/2·0 = tanh(1)/2
    # t1: n = tanh(0 + 1/2·h1);       h2 = n/2 + h1/2
    h1 = np.tanh(1) / 2
    h2 = np.tanh(h1 / 2) / 2 + h1 / 2
    np.testing.assert_allclose(_ref(PLAIN, [1, 0]), [[h1], [h2]], rtol=1e-6)


def test_gate_order_is_r_z_n():
    # W_z = 100 saturates the update gate: h stays at its initial 0.
    # (Were the first two gates swapped, z would be 1/2 and h1 = tanh(1)/2.)
    np.testing.assert_allclose(_ref([0, 100, 1, 0, 0, 0, 0, 0, 0], [1], steps=1), [[0]], atol=1e-6)
    # the third bias is the candidate's: n = tanh(0 + 2) with r = z = 1/2 -> h1 = tanh(2)/2
    np.testing.assert_allclose(_ref([0, 0, 0, 0, 0, 0, 0, 0, 2], [0], steps=1),
                               [[np.tanh(2) / 2]], rtol=1e-6)


def test_reset_gate_multiplies_only_the_recurrent_term():
    # r = sigmoid(-100 x) -> 0 for x = 1 at t1 (W_r = -100): n = tanh(W_n x + b_n + r·R_n h)
    # t0: x = 0, r = 1/2, z = 1/2, n = tanh(0 + 1) = tanh 1 (b_n = 1), h1 = tanh(1)/2
    # t1: x = 1, r = 0: n = tanh(1·1 + 1 + 0) = tanh 2, h2 = tanh(2)/2 + h1/2
    blob = [-100, 0, 1, 0, 0, 5, 0, 0, 1]
    h1 = np.tanh(1) / 2
    np.testing.assert_allclose(_ref(blob, [0, 1]), [[h1], [np.tanh(2) / 2 + h1 / 2]], rtol=1e-6)


def test_input_and_output_are_time_major():
    # N = 2 sequences, T = 2: rows are (t0,n0), (t0,n1), (t1,n0), (t1,n1).
    # Only sequence n0 sees a 1 (row 0); sequence n1 stays 0.
    y = _ref(PLAIN, [1, 0, 0, 0], steps=2, batchsize=2)
    h1 = np.tanh(1) / 2
    np.testing.assert_allclose(y, [[h1], [0], [np.tanh(h1 / 2) / 2 + h1 / 2], [0]], rtol=1e-6)


def test_weight_layout_sizes():
    layer = Layer(0, "GRU", ["x"], ["y"], {"hidden": 3, "inputs": 2, "steps": 4, "batchsize": 5})
    specs = [(s.name, s.shape) for s in GRU().weight_specs(layer)]
    # 3 gates x ([H, E] + [H, H] + [H]) = 3 x (6 + 9 + 3) = 54; hx = batchsize x H = 15
    assert specs == [("weight_space", (1, 54)), ("hx", (1, 15))]


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_in_isolation(opset, rng):
    block = {"gru_param": {"num_output": 3, "batchsize": 2, "SeqLength": 4, "vector_size": 5}}
    handler, layer = make_layer("GRU", block, [(B * 4, 5)])
    layer.weights = {"weight_space": rng.uniform(-0.5, 0.5, (1, 3 * (15 + 9 + 3)))
                     .astype(np.float32), "hx": np.zeros((1, 6), np.float32)}
    check_layer(handler, layer, [rng.standard_normal((8, 5)).astype(np.float32)], opset=opset)


def _model(batchsize=4, steps=3, vec=4, hidden=5):
    return (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=steps)])
            .embedding(bottom="s", top="e", vec_size=vec)
            .dense("Reshape", "e", "rows", leading_dim=vec)  # [B*T, E]
            .dense("GRU", "rows", "gru", gru_param={"num_output": hidden, "batchsize": batchsize,
                                                    "SeqLength": steps, "vector_size": vec})
            .dense("Reshape", "gru", "flat", leading_dim=steps * hidden)
            .dense("InnerProduct", "flat", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


@pytest.mark.parametrize("opset", [13, 17])
def test_roundtrip(roundtrip, opset):
    _, graph, _, _ = roundtrip(_model(), batch=4, opset=opset)
    gru = next(l for l in graph.layers if l.type == "GRU")
    assert gru.weights["weight_space"].shape == (1, 3 * (5 * 4 + 5 * 5 + 5))
    assert gru.weights["hx"].shape == (1, 4 * 5)


def test_roundtrip_with_embedding_lookup(roundtrip):
    roundtrip(_model(), batch=4, convert_embedding=True)


def test_input_width_must_be_vector_size():
    b = (ModelBuilder().input(dense_dim=6)
         .dense("GRU", "dense", "gru", gru_param={"num_output": 2, "batchsize": 4,
                                                  "SeqLength": 2, "vector_size": 3}))
    with pytest.raises(GraphStructureError, match="vector_size=3"):
        b.graph()

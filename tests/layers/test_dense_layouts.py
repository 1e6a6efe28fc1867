"""Every trainable layer's dense-file layout, pinned with files laid out by hand.

The dense file of each case is ``np.arange`` floats written directly (never through
``weight_specs`` or our writer), so the offsets below come from FORMATS §3.2 alone. Each
case asserts which weight got which values, then compares the numpy reference and ONNX
Runtime with the layer's math written out here. Hyperparameters are never the defaults.
"""

import json

import numpy as np
import onnxruntime as ort
import pytest

from hugectr2onnx.converter import convert
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.loader import load_model
from hugectr2onnx.reference import run_reference


def _values(n, scale, shift=0.0):
    return ((np.arange(n, dtype=np.float64) - shift) * scale).astype(np.float32)


def _load(tmp_path, builder, dense, ntp=None, batch=4, seed=0):
    """Write the graph JSON, the hand-laid dense file (and ntp text); load, convert, run."""
    (tmp_path / "g.json").write_text(json.dumps(builder.graph_json()))
    dense.astype("<f4").tofile(tmp_path / "dense.model")
    ntp_path = None
    if ntp is not None:
        ntp_path = tmp_path / "dense.model.ntp.json"
        ntp_path.write_text(ntp)
    args = (str(tmp_path / "g.json"), str(tmp_path / "dense.model"))
    graph = load_model(*args, ntp_file=ntp_path)
    convert(str(tmp_path / "m.onnx"), *args, False, None, ntp_path)
    x = np.random.default_rng(seed).uniform(-1, 1, (batch, graph.data.dense_dim))
    feeds = {"dense": x.astype(np.float32)}
    ref = run_reference(graph, feeds)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    return graph, feeds["dense"].astype(np.float64), ref, got


def _weights(graph, top):
    layer = next(l for l in graph.layers if l.tops[0] == top)
    return {k: np.asarray(v) for k, v in layer.weights.items()}


def _check(ref, got, name, want, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(ref[name], want, rtol=rtol, atol=atol, err_msg="reference")
    np.testing.assert_allclose(got[name], want, rtol=rtol, atol=atol, err_msg="onnxruntime")


def _dense_input(dim, *layers):
    b = ModelBuilder().input(dense_dim=dim)
    for t, bottom, top, params in layers:
        b.dense(t, bottom, top, **params)
    return b


def test_inner_product_w_then_b(tmp_path):
    v = _values(8, 0.25, 3)
    b = _dense_input(3, ("InnerProduct", "dense", "y", {"fc_param": {"num_output": 2}}))
    graph, x, ref, got = _load(tmp_path, b, v)
    w = _weights(graph, "y")
    np.testing.assert_array_equal(w["W"], v[0:6].reshape(3, 2))  # W [in, out] row-major
    np.testing.assert_array_equal(w["b"].reshape(-1), v[6:8])
    _check(ref, got, "y", x @ v[0:6].reshape(3, 2) + v[6:8])


@pytest.mark.parametrize("relu", [True, False])
def test_fused_inner_product_w_then_b(tmp_path, relu):
    v = _values(8, 0.25, 5)
    params = {"fc_param": {"num_output": 2}}
    if not relu:  # no ReLU only for Tail + activation None; Tail needs 4 bottoms
        b = _dense_input(3, ("FusedInnerProduct", "dense", ["h0", "h1", "h2", "h3"],
                             {"fc_param": {"num_output": 3}, "position": "Head"}),
                         ("FusedInnerProduct", ["h0", "h1", "h2", "h3"], "y",
                          {**params, "position": "Tail", "activation": "None"}))
        v = _values(12 + 8, 0.25, 9)
    else:
        b = _dense_input(3, ("FusedInnerProduct", "dense", "y", params))
    graph, x, ref, got = _load(tmp_path, b, v)
    if relu:
        w = _weights(graph, "y")
        np.testing.assert_array_equal(w["W"], v[0:6].reshape(3, 2))
        np.testing.assert_array_equal(w["b"].reshape(-1), v[6:8])
        _check(ref, got, "y", np.maximum(x @ v[0:6].reshape(3, 2) + v[6:8], 0))
        return
    head, tail = _weights(graph, "h0"), _weights(graph, "y")
    np.testing.assert_array_equal(head["W"], v[0:9].reshape(3, 3))
    np.testing.assert_array_equal(head["b"].reshape(-1), v[9:12])
    np.testing.assert_array_equal(tail["W"], v[12:18].reshape(3, 2))
    np.testing.assert_array_equal(tail["b"].reshape(-1), v[18:20])
    first = np.maximum(x @ v[0:9].reshape(3, 3) + v[9:12], 0)
    _check(ref, got, "y", first @ v[12:18].reshape(3, 2) + v[18:20])


def test_mlp_w_b_per_layer_with_unused_bias_stored(tmp_path):
    v = _values(17, 0.125, 8)
    b = _dense_input(3, ("MLP", "dense", "y", {"mlp_param": {
        "num_outputs": [2, 3], "biases": [False, True], "activations": ["Relu", "None"]}}))
    graph, x, ref, got = _load(tmp_path, b, v)
    w = _weights(graph, "y")
    W0, b0, W1, b1 = v[0:6].reshape(3, 2), v[6:8], v[8:14].reshape(2, 3), v[14:17]
    for name, want in (("W0", W0), ("b0", b0), ("W1", W1), ("b1", b1)):
        np.testing.assert_array_equal(w[name].reshape(want.shape), want, err_msg=name)
    _check(ref, got, "y", np.maximum(x @ W0, 0) @ W1 + b1)  # b0 stored, not used


def test_multi_cross_v1_interleaves_w_and_b(tmp_path):
    v = _values(12, 0.0625, 4)
    b = _dense_input(3, ("MultiCross", "dense", "y", {"mc_param": {"num_layers": 2}}))
    graph, x, ref, got = _load(tmp_path, b, v)
    w = _weights(graph, "y")
    assert graph.layers[0].params["projection_dim"] == 0
    parts = {"w0": v[0:3], "b0": v[3:6], "w1": v[6:9], "b1": v[9:12]}
    for name, want in parts.items():
        np.testing.assert_array_equal(w[name].reshape(-1), want, err_msg=name)
    h = x
    for i in range(2):  # x_{l+1} = x0 * (x_l . w_l) + b_l + x_l
        h = x * (h @ parts[f"w{i}"])[:, None] + parts[f"b{i}"] + h
    _check(ref, got, "y", h)


def test_multi_cross_v2_u_then_v_then_b(tmp_path):
    d, p, n = 3, 2, 2
    v = _values(n * (2 * d * p + d), 0.03125, 15)
    b = _dense_input(d, ("MultiCross", "dense", "y", {"mc_param": {"num_layers": n}}))
    graph, x, ref, got = _load(tmp_path, b, v)
    assert graph.layers[0].params["projection_dim"] == p  # recovered from the size
    w = _weights(graph, "y")
    parts = {"U0": v[0:6].reshape(3, 2), "V0": v[6:12].reshape(2, 3), "b0": v[12:15],
             "U1": v[15:21].reshape(3, 2), "V1": v[21:27].reshape(2, 3), "b1": v[27:30]}
    for name, want in parts.items():
        np.testing.assert_array_equal(w[name].reshape(want.shape), want, err_msg=name)
    h = x
    for i in range(n):  # x_{l+1} = x0 * (x_l U_l V_l + b_l) + x_l
        h = x * (h @ parts[f"U{i}"] @ parts[f"V{i}"] + parts[f"b{i}"]) + h
    _check(ref, got, "y", h)


def test_batch_norm_gamma_then_beta_and_ntp_mean_then_var(tmp_path):
    v = _values(6, 0.5, 2)
    ntp = ('{\n  "layers": [\n    {\n      "type": "BatchNorm",\n'
           '      "mean": [0.100000, -0.200000, 0.300000],\n'
           '      "var": [0.500000, 2.000000, 0.250000]\n    }\n  ]\n}\n')
    eps = 0.125
    b = _dense_input(3, ("BatchNorm", "dense", "y", {"bn_param": {"factor": 0.5, "eps": eps}}))
    graph, x, ref, got = _load(tmp_path, b, v, ntp)
    w = _weights(graph, "y")
    gamma, beta = v[0:3], v[3:6]
    mean, var = np.array([0.1, -0.2, 0.3]), np.array([0.5, 2.0, 0.25])
    np.testing.assert_array_equal(w["gamma"].reshape(-1), gamma)
    np.testing.assert_array_equal(w["beta"].reshape(-1), beta)
    np.testing.assert_allclose(w["mean"].reshape(-1), mean, rtol=1e-7)
    np.testing.assert_allclose(w["var"].reshape(-1), var, rtol=1e-7)
    _check(ref, got, "y", gamma * (x - mean) / np.sqrt(var + eps) + beta)


@pytest.mark.parametrize("opset", [13, 17])
def test_layer_norm_gamma_then_beta_with_its_own_eps(tmp_path, opset):
    v = _values(8, 0.25, 3)
    eps = 0.75  # far from ONNX's default 1e-5, so an ignored eps shows
    b = _dense_input(4, ("LayerNorm", "dense", "y", {"ln_param": {"eps": eps}}))
    (tmp_path / "o").mkdir()
    graph, x, ref, got = _load(tmp_path, b, v)
    w = _weights(graph, "y")
    gamma, beta = v[0:4], v[4:8]
    np.testing.assert_array_equal(w["gamma"].reshape(-1), gamma)
    np.testing.assert_array_equal(w["beta"].reshape(-1), beta)
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    want = (x - mu) / np.sqrt(var + eps) * gamma + beta
    np.testing.assert_allclose(ref["y"], want, rtol=1e-5, atol=1e-6)
    convert(str(tmp_path / "o" / "m.onnx"), str(tmp_path / "g.json"),
            str(tmp_path / "dense.model"), opset=opset)
    sess = ort.InferenceSession(str(tmp_path / "o" / "m.onnx"))
    np.testing.assert_allclose(sess.run(["y"], {"dense": x.astype(np.float32)})[0], want,
                               rtol=1e-5, atol=1e-6)


def test_weight_multiply_w_is_s_by_v(tmp_path):
    v = _values(6, 0.5, 1)
    b = _dense_input(3, ("WeightMultiply", "dense", "y", {"weight_dims": [3, 2]}))
    graph, x, ref, got = _load(tmp_path, b, v)
    W = v.reshape(3, 2)
    np.testing.assert_array_equal(_weights(graph, "y")["W"], W)
    want = np.stack([x[:, 0] * W[0, 0], x[:, 0] * W[0, 1], x[:, 1] * W[1, 0],
                     x[:, 1] * W[1, 1], x[:, 2] * W[2, 0], x[:, 2] * W[2, 1]], axis=1)
    _check(ref, got, "y", want)


def test_gru_weight_space_then_hx(tmp_path):
    hidden, inputs, batch, steps = 2, 3, 2, 2
    n_space = 3 * hidden * inputs + 3 * hidden * hidden + 3 * hidden  # 36
    v = _values(n_space + batch * hidden, 1 / 32, 18)
    b = _dense_input(inputs, ("GRU", "dense", "y", {"gru_param": {
        "num_output": hidden, "batchsize": batch, "SeqLength": steps, "vector_size": inputs}}))
    graph, x, ref, got = _load(tmp_path, b, v, batch=batch * steps)
    w = _weights(graph, "y")
    np.testing.assert_array_equal(w["weight_space"].reshape(-1), v[:36])
    np.testing.assert_array_equal(w["hx"].reshape(-1), v[36:40])
    # cuDNN single-input-bias packing: W_r, W_z, W_n [H, E]; R_r, R_z, R_n [H, H]; b_r, b_z, b_n
    Wr, Wz, Wn = (v[6 * k:6 * k + 6].reshape(2, 3) for k in range(3))
    Rr, Rz, Rn = (v[18 + 4 * k:22 + 4 * k].reshape(2, 2) for k in range(3))
    br, bz, bn = v[30:32], v[32:34], v[34:36]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h = np.zeros((batch, hidden))  # hx is stored, not used
    rows = []
    for t in range(steps):  # rows are time-major: row t*batch + n
        xt = x[t * batch:(t + 1) * batch]
        r = sig(xt @ Wr.T + h @ Rr.T + br)
        z = sig(xt @ Wz.T + h @ Rz.T + bz)
        cand = np.tanh(xt @ Wn.T + bn + r * (h @ Rn.T))
        h = (1 - z) * cand + z * h
        rows.append(h)
    _check(ref, got, "y", np.concatenate(rows))


def test_two_layers_follow_json_order(tmp_path):
    """InnerProduct then LayerNorm: the second layer's tensors start where the first ends."""
    v = _values(6 + 2 + 2 + 2, 0.25, 4)
    b = _dense_input(3, ("InnerProduct", "dense", "fc", {"fc_param": {"num_output": 2}}),
                     ("LayerNorm", "fc", "y", {"ln_param": {"eps": 0.5}}))
    graph, x, ref, got = _load(tmp_path, b, v)
    fc = x @ v[0:6].reshape(3, 2) + v[6:8]
    np.testing.assert_array_equal(_weights(graph, "y")["gamma"], v[8:10])
    np.testing.assert_array_equal(_weights(graph, "y")["beta"], v[10:12])
    mu = fc.mean(axis=1, keepdims=True)
    want = (fc - mu) / np.sqrt(((fc - mu) ** 2).mean(axis=1, keepdims=True) + 0.5) * v[8:10] \
        + v[10:12]
    _check(ref, got, "y", want)


@pytest.mark.parametrize("alpha, eps", [(0.25, 0.5), (-0.5, 1e-3)])
def test_prelu_dice_uses_its_alpha_and_eps(tmp_path, alpha, eps):
    """No weights (the file is empty); its hyperparameters must reach both backends."""
    b = _dense_input(3, ("PReLU_Dice", "dense", "y",
                         {"prelu_dice_param": {"alpha": alpha, "eps": eps}}))
    graph, x, ref, got = _load(tmp_path, b, np.zeros(0), batch=5)
    mean, var = x.mean(axis=0), x.var(axis=0)
    p = 1 / (1 + np.exp(-(x - mean) / np.sqrt(var + eps)))
    _check(ref, got, "y", p * x + (1 - p) * alpha * x)

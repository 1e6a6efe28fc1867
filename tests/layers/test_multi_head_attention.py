import numpy as np
import onnx
import pytest

from hugectr2onnx.errors import GraphStructureError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.ir import B

from layer_harness import check_layer, make_layer


def _ref(block, xs, n_tops=1):
    handler, layer = make_layer("MultiHeadAttention", block,
                                [(B,) + np.shape(x)[1:] for x in xs], n_tops=n_tops)
    return handler.reference(layer, [np.asarray(x, np.float32) for x in xs])


# ---------------------------------------------------------------- known answers
Q = [[[1, 0]]]  # B=1, Lq=1, D=2, two heads of width 1 (scale 1/sqrt(1) = 1)
K = [[[0, 5], [np.log(3), 7]]]  # Lk=2; head 0 scores [0, ln 3], head 1 scores [0, 0]
V = [[[4, 2], [8, 6]]]


def test_fused_reference_matches_hand_computation():
    # head 0: softmax([0, ln3]) = [1/4, 3/4] -> 4/4 + 3*8/4 = 7; head 1: [1/2, 1/2] -> 4
    y = _ref({"num_attention_heads": 2, "transpose_b": False}, [Q, K, V])[0]
    np.testing.assert_allclose(y, [[[7, 4]]], rtol=1e-6)


def test_fused_masked_reference_matches_hand_computation():
    # key 1 masked off: z = [0, s1 - 10000] -> p = [1/(1 + 1e-6), ~0]
    y = _ref({"num_attention_heads": 2}, [Q, K, V, [[[[1, 0]]]]])[0]
    np.testing.assert_allclose(y, [[[4 / (1 + 1e-6), 2 / (1 + 1e-6)]]], rtol=1e-7)


def test_fused_heads_are_contiguous_column_blocks_with_dh_2():
    """H = 2, dh = 2: head 0 is columns 0-1, head 1 columns 2-3 (not 0, 2 and 1, 3).
    Head 0: q (1, 0), keys (0, 0) and (sqrt2·ln3, 0), scaled by 1/sqrt2 -> [0, ln3] ->
    p [1/4, 3/4] -> 1/4·(4, 2) + 3/4·(8, 6) = (7, 5). Head 1: q (0, 1), keys zero ->
    p [1/2, 1/2] -> (6, 8)/2 + (2, 0)/2 = (4, 4). Interleaved heads would give [7, 4, 3, 4]."""
    q = [[[1, 0, 0, 1]]]
    k = [[[0, 0, 0, 0], [np.sqrt(2) * np.log(3), 0, 0, 0]]]
    v = [[[4, 2, 6, 8], [8, 6, 2, 0]]]
    block = {"num_attention_heads": 2, "transpose_b": False}
    np.testing.assert_allclose(_ref(block, [q, k, v])[0], [[[7, 5, 4, 4]]], rtol=1e-6)
    handler, layer = make_layer("MultiHeadAttention", block, [(B, 1, 4), (B, 2, 4), (B, 2, 4)])
    for opset in (13, 17):
        got = check_layer(handler, layer, [np.asarray(a, np.float32) for a in (q, k, v)],
                          opset=opset)
        np.testing.assert_allclose(got[0], [[[7, 5, 4, 4]]], rtol=1e-6)


def test_fully_masked_row_follows_hugectrs_float32_logits():
    """Query 1 sees no key. HugeCTR's masked softmax forms z = s - 10000 in float32, where
    values are 2^-10 apart: head 0's scores [0, 0.0007] become [-10000, -10000 + 2^-10], so
    p = [1, e^(2^-10)] / (1 + e^(2^-10) + 1e-6), not the softmax of [0, 0.0007]."""
    s1 = 0.0007
    q = [[[1, 0, 0, 1], [1, 0, 0, 1]]]
    k = [[[0, 0, 0, 0], [np.sqrt(2) * s1, 0, 0, 0]]]
    v = [[[4, 2, 6, 8], [8, 6, 2, 0]]]
    mask = [[[[1, 1], [0, 0]]]]

    def head0(z1):
        p = np.array([1, np.exp(z1)]) / (1 + np.exp(z1) + 1e-6)
        return p[0] * np.array([4, 2]) + p[1] * np.array([8, 6])

    head1 = np.array([4, 4]) / (1 + 1e-6)  # equal scores stay equal
    want_row0 = np.concatenate([head0(s1), head1])  # unmasked: z = s
    want_row1 = np.concatenate([head0(2 ** -10), head1])
    assert np.abs(want_row1 - np.concatenate([head0(s1), head1])).max() > 1e-4  # visible
    block = {"num_attention_heads": 2}
    y = _ref(block, [q, k, v, mask])[0]
    np.testing.assert_allclose(y[0, 0], want_row0, rtol=1e-6)
    np.testing.assert_allclose(y[0, 1], want_row1, rtol=1e-6)
    handler, layer = make_layer("MultiHeadAttention", block,
                                [(B, 2, 4), (B, 2, 4), (B, 2, 4), (B, 1, 2, 2)])
    got = check_layer(handler, layer, [np.asarray(a, np.float32) for a in (q, k, v, mask)],
                      atol=2e-6)
    np.testing.assert_allclose(got[0][0, 1], want_row1, rtol=2e-6)


def test_masked_attention_and_masked_softmax_agree():
    """One masked-softmax semantics: the fused layer's probabilities are the Softmax
    layer's (factor 1) on the same scaled scores, fully masked rows included."""
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3))
    mask = (rng.random((2, 1, 3, 3)) < 0.5).astype(np.float32)
    mask[0, 0, 1, :] = 0
    mask[1, 0, 2, :] = 0
    y = _ref({"num_attention_heads": 2}, [q, k, v, mask])[0]
    dh = 2
    heads = lambda x: x.reshape(2, 3, 2, dh).transpose(0, 2, 1, 3)  # noqa: E731
    s = (np.matmul(heads(q).astype(np.float64), np.swapaxes(heads(k), -1, -2))
         * float(np.float32(1) / np.float32(np.sqrt(dh)))).astype(np.float32)
    sh, sl = make_layer("Softmax", {"factor": 1.0}, [(B, 2, 3, 3), (B, 1, 3, 3)])
    p = sh.reference(sl, [s, mask])[0].astype(np.float64)
    ctx = np.matmul(p, heads(v)).transpose(0, 2, 1, 3).reshape(2, 3, 4)
    np.testing.assert_allclose(y, ctx, rtol=1e-5, atol=1e-6)


def test_two_stage_split_reference_matches_hand_computation():
    q = [[[1, 0, 0, 2], [0, 1, 1, 0]]]  # two heads of width 2, Q = K
    v = [[[1, 2, 3, 4], [5, 6, 7, 8]]]
    s, v4 = _ref({"num_attention_heads": 2, "transpose_b": True}, [q, q, v], n_tops=2)
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(s, [[[[r, 0], [0, r]], [[4 * r, 0], [0, r]]]], rtol=1e-6)
    np.testing.assert_array_equal(v4, [[[[1, 2], [5, 6]], [[3, 4], [7, 8]]]])


def test_two_stage_context_reference_matches_hand_computation():
    p = [[[[0.5, 0.5]], [[1, 0]]]]  # B=1, H=2, M=1, K=2
    v = [[[[2], [4]], [[5], [7]]]]  # dh=1
    y = _ref({"num_attention_heads": 1, "transpose_b": False}, [p, v])[0]
    np.testing.assert_allclose(y, [[[3, 5]]])  # head 0 -> 3, head 1 -> 5, merged


def test_4d_scores_scaled_only_with_transpose_b_key():
    a = [[[[1, 1, 1, 1]]]]
    b = [[[[1, 1, 1, 1], [1, 0, 0, 0]]]]
    # dots [4, 1]; v4.3+ scales by 1/sqrt(4); before v4.3 (no transpose_b key) unscaled
    np.testing.assert_allclose(_ref({"transpose_b": True}, [a, b])[0], [[[[2, 0.5]]]])
    np.testing.assert_allclose(_ref({}, [a, b])[0], [[[[4, 1]]]])


def test_v41_3d_two_input_scores_are_unscaled_per_head():
    y = _ref({"num_attention_heads": 2}, [[[[1, 2]]], [[[3, 4]]]])[0]
    np.testing.assert_allclose(y, [[[[3]], [[8]]]])


# ---------------------------------------------------------------- isolation (ORT vs reference)
@pytest.mark.parametrize("opset", [13, 17, 21])
@pytest.mark.parametrize("case", [
    ({"num_attention_heads": 2}, [(B, 3, 4), (B, 5, 4), (B, 5, 4)], 1),
    ({"num_attention_heads": 2}, [(B, 3, 4), (B, 5, 4), (B, 5, 4), (B, 1, 3, 5)], 1),
    ({"num_attention_heads": 2, "transpose_b": True}, [(B, 3, 4)] * 3, 2),
    ({"transpose_b": True}, [(B, 2, 3, 4), (B, 2, 5, 4)], 1),
    ({"transpose_b": False}, [(B, 2, 3, 5), (B, 2, 5, 4)], 1),
    ({}, [(B, 2, 3, 4), (B, 2, 5, 4)], 1),
    ({"num_attention_heads": 2}, [(B, 3, 4), (B, 3, 4)], 1),
], ids=["fused", "fused_mask", "split_qkv", "abt", "context", "abt_v37", "qk_v41"])
def test_in_isolation(case, opset, rng):
    block, shapes, n_tops = case
    handler, layer = make_layer("MultiHeadAttention", block, shapes, n_tops=n_tops)
    xs = [rng.standard_normal((2,) + s[1:]).astype(np.float32) for s in shapes]
    if len(shapes) == 4:
        xs[3] = (rng.random(xs[3].shape) < 0.6).astype(np.float32)
    check_layer(handler, layer, xs, opset=opset)


# ---------------------------------------------------------------- full models
def _head(b, src, width):
    return (b.dense("Reshape", src, "flat", leading_dim=width)
            .dense("InnerProduct", "flat", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


def test_fused_roundtrip_with_lq_ne_lk(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s1", slot_num=4),
                                                   dict(top="s2", slot_num=3)])
         .embedding(bottom="s1", top="e1", vec_size=6)
         .embedding(bottom="s2", top="e2", vec_size=6)
         .dense("InnerProduct", "e1", "q", fc_param={"num_output": 6})
         .dense("InnerProduct", "e2", "k", fc_param={"num_output": 6})
         .dense("InnerProduct", "e2", "v", fc_param={"num_output": 6})
         .dense("MultiHeadAttention", ["q", "k", "v"], "att", num_attention_heads=3,
                transpose_b=False))
    _, graph, _, _ = roundtrip(_head(b, "att", 24))
    assert graph.shapes["att"][1:] == (4, 6)


def test_fused_roundtrip_with_sequence_mask(roundtrip, rng):
    b = (ModelBuilder().input(dense_dim=2, sparse=[dict(top="s", slot_num=4)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Slice", "dense", ["len_from", "len_to"], ranges=[[0, 1], [1, 2]])
         .dense("SequenceMask", ["len_from", "len_to"], "mask", max_sequence_len_from=4,
                max_sequence_len_to=4)
         .dense("InnerProduct", "e", "q", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "k", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "v", fc_param={"num_output": 4})
         .dense("MultiHeadAttention", ["q", "k", "v", "mask"], "att", num_attention_heads=2,
                transpose_b=False))
    batch = 8
    feeds = {"dense": rng.integers(1, 5, (batch, 2)).astype(np.float32),
             "e": rng.uniform(-1, 1, (batch, 4, 4)).astype(np.float32)}
    roundtrip(_head(b, "att", 16), feeds=feeds)


def test_two_layers_in_one_graph_get_unique_names(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("InnerProduct", "e", "q", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "k", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "v", fc_param={"num_output": 4})
         .dense("MultiHeadAttention", ["q", "k", "v"], "att1", num_attention_heads=2,
                transpose_b=False)
         .dense("InnerProduct", "att1", "q2", fc_param={"num_output": 4})
         .dense("InnerProduct", "att1", "k2", fc_param={"num_output": 4})
         .dense("InnerProduct", "att1", "v2", fc_param={"num_output": 4})
         .dense("MultiHeadAttention", ["q2", "k2", "v2"], "att2", num_attention_heads=2,
                transpose_b=False))
    _, _, path, _ = roundtrip(_head(b, "att2", 12))
    names = [o for n in onnx.load(str(path)).graph.node for o in n.output]
    assert len(names) == len(set(names))


def test_two_stage_roundtrip(roundtrip):
    """v4.3 - v23.08: Q,K,V -> (scores, V by head) -> Softmax -> P·V with heads merged."""
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("InnerProduct", "e", "q", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "k", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "v", fc_param={"num_output": 4})
         .dense("MultiHeadAttention", ["q", "k", "v"], ["scores", "v4"], num_attention_heads=2,
                transpose_b=True)
         .dense("Softmax", "scores", "probs", factor=1.0)
         .dense("MultiHeadAttention", ["probs", "v4"], "att", num_attention_heads=2,
                transpose_b=False))
    _, graph, _, _ = roundtrip(_head(b, "att", 12))
    assert graph.shapes["scores"][1:] == (2, 3, 3) and graph.shapes["v4"][1:] == (2, 3, 2)


def test_4d_transpose_b_then_matrix_multiply_roundtrip(roundtrip):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("MultiHeadAttention", ["e", "e", "e"], ["scores", "v4"], num_attention_heads=2,
                transpose_b=True)
         .dense("MultiHeadAttention", ["v4", "v4"], "vv", num_attention_heads=2,
                transpose_b=True)  # [B,2,3,3]
         .dense("MatrixMultiply", ["vv", "scores"], "mm"))  # [B,2,3,3]
    roundtrip(_head(b, "mm", 18))


@pytest.mark.parametrize("bottoms, tops, kw, match", [
    (["q", "k", "v"], "att", {"num_attention_heads": 3}, "not divisible"),
    (["q", "k"], "att", {"transpose_b": True}, "since v4.3"),
    (["q", "k", "v", "q"], "att", {}, "mask must be"),
])
def test_bad_inputs_are_rejected(bottoms, tops, kw, match):
    b = (ModelBuilder().input(dense_dim=0, sparse=[dict(top="s", slot_num=3)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("InnerProduct", "e", "q", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "k", fc_param={"num_output": 4})
         .dense("InnerProduct", "e", "v", fc_param={"num_output": 4})
         .dense("MultiHeadAttention", bottoms, tops, **kw))
    with pytest.raises(GraphStructureError, match=match):
        b.graph()

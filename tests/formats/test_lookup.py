"""Key -> row lookups: numpy mirror and ONNX Runtime against an independent reference."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hugectr2onnx.errors import UsageError
from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.onnx_backend import lookup
from hugectr2onnx.onnx_backend.emitter import OnnxEmitter
from hugectr2onnx.onnx_backend.lookup import (DirectIndex, HashIndex, LabelEncoderIndex,
                                              build_index)

I64_MIN, I64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
SPECIAL = np.array([I64_MIN, I64_MIN + 1, -2, -1, 0, 1, I64_MAX - 1, I64_MAX], dtype=np.int64)


def expected_rows(keys, rows, queries):
    """Independent reference: a sorted search (rows default to 1..K in key order)."""
    keys = np.asarray(keys, dtype=np.int64)
    rows = np.arange(1, keys.size + 1) if rows is None else np.asarray(rows)
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], queries), 0, keys.size - 1)
    return np.where(keys[order][pos] == queries, rows[order][pos], 0)


def run_onnx(index, queries, opset=17, per_sample=None):
    """Emit the index into a model with a keys input shaped like ``queries``, check it with
    the full checker and strict shape inference, and run it in ONNX Runtime."""
    g = OnnxEmitter(opset)
    g.reserve("keys")
    out = index.emit(g, "keys", "emb", per_sample=per_sample)
    g.node("Identity", [out], "rows")
    graph = helper.make_graph(
        g.nodes, "lookup", [helper.make_tensor_value_info("keys", TensorProto.INT64, queries.shape)],
        [helper.make_tensor_value_info("rows", TensorProto.INT64, queries.shape)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in g.initializers.items()])
    opsets = [helper.make_opsetid("", opset)]
    if g.ml_opset:
        opsets.append(helper.make_opsetid("ai.onnx.ml", g.ml_opset))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10 if opset >= 21 else 8)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"keys": queries})[0]


def queries_for(keys, rng, n_unseen=2000):
    keys = np.asarray(keys, dtype=np.int64)
    near = np.concatenate([keys[:500] + 1, keys[:500] - 1])  # wraps at the int64 ends: fine
    unseen = rng.integers(I64_MIN, I64_MAX, n_unseen, dtype=np.int64, endpoint=True)
    return np.concatenate([keys, near, unseen, SPECIAL])


def hashed(rng, n):
    return np.unique(rng.integers(I64_MIN, I64_MAX, n, dtype=np.int64, endpoint=True))


KEY_SETS = {
    "hashed": lambda rng: rng.permutation(hashed(rng, 3000)),
    "hashed_with_limits": lambda rng: rng.permutation(np.unique(np.concatenate(
        [hashed(rng, 3000), [I64_MIN, I64_MAX, -1, 0]]))),
    "negative": lambda rng: -1 - rng.permutation(5000).astype(np.int64) * 7,
    "sequential": lambda rng: np.arange(4000, dtype=np.int64),
    "sequential_offset": lambda rng: np.arange(4000, dtype=np.int64) + 10 ** 12,
    "slot_stride": lambda rng: (np.arange(26, dtype=np.int64)[:, None] << 32
                                | rng.permutation(20000)[:150]).ravel(),
    "high_bits_only": lambda rng: np.arange(1, 3001, dtype=np.int64) << 40,
}


@pytest.mark.parametrize("strategy", ["hash", "label_encoder", "direct"])
def test_known_answer_tiny_table(strategy):
    keys = np.array([10, -5, 7], dtype=np.int64)  # rows 1, 2, 3 in key order
    q = np.array([[7, 8, -5], [10, -1, I64_MIN]], dtype=np.int64)
    want = np.array([[3, 0, 2], [1, 0, 0]])
    index = build_index(keys, strategy=strategy)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)


def test_known_answer_hash_arithmetic_wraps_modulo_2_64():
    """A level built by hand: h = key*3, bucket = top bit of h, multipliers [1, 3], slot =
    top 32 bits of h*m scaled to 10 slots. INT64_MIN is 2^63 unsigned: h = 2^63*3 mod 2^64
    = 2^63 -> bucket 1; 2^63*3 mod 2^64 = 2^63 -> top 32 bits 2^31 -> 2^31*10 >> 32 = 5.
    -1 is 2^64-1: h = 2^64-3 -> bucket 1; (2^64-3)*3 mod 2^64 = 2^64-9 -> 2^32-1 ->
    (2^32-1)*10 >> 32 = 9. 5 -> h = 15 -> bucket 0; 15*1 -> top 32 bits 0 -> slot 0.
    INT64_MAX -> h = 2^63-3 -> bucket 0 -> 2^31-1 -> slot 4, a free slot: a miss."""
    slot_keys = np.zeros(10, dtype=np.int64)
    slot_rows = np.zeros(10, dtype=np.int32)
    slot_keys[[5, 9, 0]] = I64_MIN, -1, 5
    slot_rows[[5, 9, 0]] = 7, 8, 9
    level = lookup._HashLevel(3, 1, np.array([1, 3], dtype=np.uint32), slot_keys, slot_rows)
    index = HashIndex(np.zeros(0, dtype=np.int64))
    index.levels = [level]
    q = np.array([I64_MIN, -1, 5, I64_MAX, 6, 0], dtype=np.int64)
    np.testing.assert_array_equal(level.slots(q.view(np.uint64))[:4], [5, 9, 0, 4])
    want = [7, 8, 9, 0, 0, 0]
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)


@pytest.mark.parametrize("name", list(KEY_SETS))
@pytest.mark.parametrize("strategy", ["hash", "label_encoder", "auto"])
def test_strategies_match_reference(name, strategy):
    rng = np.random.default_rng(7)
    keys = KEY_SETS[name](rng)
    q = queries_for(keys, rng)
    want = expected_rows(keys, None, q)
    assert np.isin(np.arange(1, keys.size + 1), want).all()  # every stored key is asked for
    index = build_index(keys, strategy=strategy)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q.reshape(1, -1, 1)), want.reshape(1, -1, 1))


@pytest.mark.parametrize("name", ["negative", "sequential", "sequential_offset"])
def test_direct_matches_reference(name):
    rng = np.random.default_rng(3)
    keys = KEY_SETS[name](rng)
    q = queries_for(keys, rng)
    index = build_index(keys, strategy="direct")
    want = expected_rows(keys, None, q)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)


@pytest.mark.parametrize("keys", [[I64_MIN, I64_MIN + 3], [I64_MAX - 2, I64_MAX],
                                  [I64_MIN, I64_MIN + 1, I64_MIN + 2]])
def test_direct_ranges_touching_int64_limits(keys):
    keys = np.array(keys, dtype=np.int64)
    q = np.concatenate([SPECIAL, keys, keys + 1, keys - 1])
    index = DirectIndex(keys)
    want = expected_rows(keys, None, q)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)


@pytest.mark.parametrize("opset", [13, 17, 21])
@pytest.mark.parametrize("strategy", ["direct", "hash", "label_encoder"])
def test_opsets_and_custom_rows(strategy, opset):
    """Rows other than 1..K (as the per-GPU groups of Localized tables pass them)."""
    rng = np.random.default_rng(opset)
    keys = (rng.permutation(3000)[:1000] - 1500).astype(np.int64)
    rows = rng.permutation(5000)[:1000] + 1
    q = queries_for(keys, rng, 200)
    index = build_index(keys, rows, strategy=strategy)
    want = expected_rows(keys, rows, q)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q.reshape(-1, 2, 1), opset),
                                  want.reshape(-1, 2, 1))


@pytest.mark.parametrize("strategy", ["direct", "hash"])
def test_rows_beyond_int32_keep_int64_arrays(strategy):
    keys = np.arange(-50, 50, dtype=np.int64) * 3
    rows = np.arange(keys.size, dtype=np.int64) + 2 ** 33
    index = build_index(keys, rows, strategy=strategy)
    q = np.concatenate([keys, keys + 1, SPECIAL])
    want = expected_rows(keys, rows, q)
    assert want.max() > 2 ** 33
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)


def test_label_encoder_attribute_kinds():
    keys = np.array([3, -9, 2 ** 40], dtype=np.int64)
    index = LabelEncoderIndex(keys)
    for opset, ml, attr in ((17, 2, "keys_int64s"), (21, 4, "keys_tensor")):
        g = OnnxEmitter(opset)
        index.emit(g, "keys", "e")
        assert g.ml_opset == ml
        assert attr in [a.name for a in g.nodes[-1].attribute]
        q = np.array([2 ** 40, 3, 4, -9], dtype=np.int64)
        np.testing.assert_array_equal(run_onnx(index, q, opset), [3, 1, 0, 2])


def test_hash_200k_hashed_keys_one_level():
    rng = np.random.default_rng(11)
    keys = hashed(rng, 200_000)
    index = HashIndex(keys)
    assert len(index.levels) == 1
    # per copy: ~13.3 B of slot arrays at load 0.9, plus the multipliers
    assert index.nbytes < lookup.LANES * 16 * keys.size
    q = queries_for(keys[:20000], rng)
    want = expected_rows(keys, None, q)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)
    np.testing.assert_array_equal(index.rows(keys), np.arange(1, keys.size + 1))


def test_hash_unplaced_buckets_go_to_further_levels(monkeypatch):
    """With two placement attempts per bucket many buckets fail; they must land in later
    levels and every key must still be found."""
    monkeypatch.setattr(lookup, "HASH_ROUNDS", 2)
    rng = np.random.default_rng(5)
    keys = hashed(rng, 20000)
    index = HashIndex(keys)
    assert len(index.levels) >= 2
    q = queries_for(keys, rng)
    want = expected_rows(keys, None, q)
    np.testing.assert_array_equal(index.rows(q), want)
    np.testing.assert_array_equal(run_onnx(index, q), want)


@pytest.mark.parametrize("strategy", ["hash", "direct"])
@pytest.mark.parametrize("per_sample", [None, 3, 26])
def test_lane_split_reads(strategy, per_sample):
    """With an even count of keys per sample the index reads split over the copies of each
    array; otherwise they read the first copy. Both must give the reference rows."""
    rng = np.random.default_rng(4)
    keys = rng.permutation(5000).astype(np.int64) if strategy == "direct" else hashed(rng, 5000)
    n = per_sample or 5
    q = rng.choice(np.concatenate([keys, keys + 7]), size=(17, n, 1))
    want = expected_rows(keys, None, q)
    index = build_index(keys, strategy=strategy)
    np.testing.assert_array_equal(run_onnx(index, q, per_sample=per_sample), want)
    g = OnnxEmitter()
    g.reserve("keys")
    index.emit(g, "keys", "emb", per_sample=per_sample)
    reads = [n for n in g.nodes if n.op_type == "GatherElements"]
    shapes = {tuple(np.asarray(g.initializers[r.input[0]]).shape[:1]) for r in reads}
    assert shapes == {(lookup.LANES,)}
    split = {int(g.initializers[n.input[1]][0]) for n in g.nodes
             if n.op_type == "Reshape" and n.output[0] in {r.input[1] for r in reads}}
    assert split == {lookup.LANES if per_sample == 26 else 1}


@pytest.mark.parametrize("rounds", [None, 2])
def test_hash_slot_order(monkeypatch, rounds):
    """slot_order: a found key's row is its slot (after row 0 and earlier levels), and
    table_rows maps every such row back to the key's trained row."""
    if rounds:
        monkeypatch.setattr(lookup, "HASH_ROUNDS", rounds)
    rng = np.random.default_rng(9)
    keys = rng.permutation(hashed(rng, 20000))
    index = HashIndex(keys, slot_order=True)
    assert (len(index.levels) >= 2) == bool(rounds)
    source = index.table_rows()
    assert source.size == 1 + sum(l.size for l in index.levels)
    q = queries_for(keys, rng)
    file_rows = expected_rows(keys, None, q)
    got = index.rows(q)
    np.testing.assert_array_equal(source[got], file_rows)
    assert ((got == 0) == (file_rows == 0)).all()
    np.testing.assert_array_equal(run_onnx(index, q.reshape(1, -1, 1), per_sample=q.size),
                                  got.reshape(1, -1, 1))
    assert np.array_equal(np.sort(source[source > 0]), np.arange(1, keys.size + 1))
    g = OnnxEmitter()
    g.reserve("keys")
    index.emit(g, "keys", "emb")
    assert not any("slot_rows" in name for name in g.initializers)
    with pytest.raises(ValueError, match="rows must be None"):
        HashIndex(keys, np.arange(keys.size) + 1, slot_order=True)


def test_hash_rejects_duplicate_keys():
    with pytest.raises(lookup.DuplicateKeyError, match="key 5 appears more than once"):
        HashIndex(np.array([5, 9, 5], dtype=np.int64))


def test_hash_finds_a_duplicate_among_many_keys():
    keys = hashed(np.random.default_rng(3), 50_000)
    keys[40_000] = keys[123]
    with pytest.raises(lookup.DuplicateKeyError, match=f"key {keys[123]} appears"):
        HashIndex(keys)


def test_auto_choice_and_errors():
    assert build_index(np.arange(100, dtype=np.int64) * 3).name == "direct"
    spread = np.array([0, 10 ** 15], dtype=np.int64)
    assert build_index(spread).name == "hash"
    with pytest.raises(UsageError, match="direct lookup needs"):
        build_index(spread, strategy="direct")
    with pytest.raises(UsageError, match="lookup must be one of"):
        build_index(spread, strategy="cuckoo")
    assert set(lookup.STRATEGIES) == {"auto", "direct", "hash", "label_encoder"}


@pytest.mark.parametrize("strategy", ["hash", "label_encoder", "direct"])
def test_converted_model_with_each_lookup(roundtrip, strategy):
    b = (ModelBuilder().input(dense_dim=3, sparse=[dict(top="s", slot_num=3, nnz_per_slot=2)])
         .embedding(bottom="s", top="e", vec_size=4)
         .dense("Reshape", "e", "r", leading_dim=12)
         .dense("Concat", ["r", "dense"], "c")
         .dense("InnerProduct", "c", "fc", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    rng = np.random.default_rng(2)
    keys = (rng.permutation(600)[:300] - 250).astype(np.int64)  # compact: direct is allowed
    if strategy != "direct":
        keys = np.concatenate([keys, hashed(rng, 300)])
    tables = [{"keys": keys, "vectors": rng.uniform(-1, 1, (keys.size, 4)).astype(np.float32)}]
    report, *_ = roundtrip(b, convert_embedding=True, tables=tables, lookup=strategy, batch=64)

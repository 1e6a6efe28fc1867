"""Embedding semantics end to end: combiners, padding and unseen keys against hand values."""

import numpy as np
import onnxruntime as ort
import pytest

from hugectr2onnx import converter
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model


def _model(combiner, nnz=3):
    return (ModelBuilder().input(dense_dim=1, sparse=[dict(top="s", slot_num=2, nnz_per_slot=nnz,
                                                          is_fixed_length=False)])
            .embedding(bottom="s", top="e", vec_size=2, combiner=combiner)
            .dense("Reshape", "e", "r", leading_dim=4)
            .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))


TABLE = {"keys": np.array([-1, 7, 2 ** 62 + 5], np.int64),
         "vectors": np.array([[100, 100], [1, 2], [10, 20]], np.float32)}


def _embedding_output(tmp_path, combiner, keys, **kw):
    art = save_model(_model(combiner, keys.shape[2]), tmp_path / combiner, tables=[TABLE])
    out = tmp_path / f"{combiner}.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models, **kw)
    import onnx
    m = onnx.load(str(out))
    m.graph.output.append(onnx.helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString())
    return sess.run(["e"], {"dense": np.zeros((1, 1), np.float32), "s": keys})[0][0]


KEYS = np.array([[[7, 2 ** 62 + 5, -1], [7, 999, -1]]], np.int64)  # 999 unseen, -1 padding


def test_sum_skips_padding_even_when_it_is_a_trained_key(tmp_path):
    e = _embedding_output(tmp_path, "sum", KEYS)
    np.testing.assert_allclose(e, [[11, 22], [1, 2]])


def test_mean_counts_unseen_keys_but_not_padding(tmp_path):
    e = _embedding_output(tmp_path, "mean", KEYS)
    np.testing.assert_allclose(e, [[5.5, 11], [0.5, 1]])


def test_without_padding_key_minus_one_is_an_ordinary_key(tmp_path):
    e = _embedding_output(tmp_path, "mean", KEYS, padding_key=None)
    np.testing.assert_allclose(e, [[111 / 3, 122 / 3], [101 / 3, 102 / 3]], rtol=1e-6)


def test_custom_padding_key(tmp_path):
    keys = np.array([[[7, 0, 0], [999, 0, 0]]], np.int64)
    e = _embedding_output(tmp_path, "mean", keys, padding_key=0)
    np.testing.assert_allclose(e, [[1, 2], [0, 0]])


@pytest.mark.parametrize("vec, op", [(64, "GatherND"), (65, "Gather")])
def test_row_gather_op_follows_row_width_and_gives_the_rows(tmp_path, vec, op):
    """GatherND up to 64 floats per row, Gather above (measured, docs/lookup.md)."""
    import onnx
    rng = np.random.default_rng(0)
    keys = np.array([3, 2 ** 40, -9], np.int64)
    vectors = rng.standard_normal((3, vec)).astype(np.float32)
    model = (ModelBuilder().input(dense_dim=1, sparse=[dict(top="s", slot_num=2)])
             .embedding(bottom="s", top="e", vec_size=vec)
             .dense("Reshape", "e", "r", leading_dim=2 * vec)
             .dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
             .dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss"))
    art = save_model(model, tmp_path / "m", tables=[{"keys": keys, "vectors": vectors}])
    out = tmp_path / "m.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models)
    m = onnx.load(str(out))
    gathers = [n for n in m.graph.node if n.op_type in ("Gather", "GatherND")
               and n.input[0].endswith(".table")]
    assert [n.op_type for n in gathers] == [op]
    m.graph.output.append(onnx.helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString())
    q = np.array([[[2 ** 40], [5]], [[-9], [3]]], np.int64)  # 5 unseen
    e = sess.run(["e"], {"dense": np.zeros((2, 1), np.float32), "s": q})[0]
    np.testing.assert_array_equal(e, [[vectors[1], np.zeros(vec)], [vectors[2], vectors[0]]])


# ------------------------------------------------------------------ Localized, several GPUs
def _localized(tmp_path, solver_gpu=None):
    """4 slots on 3 GPUs: slot s lives on GPU s mod 3, so slots 0 and 3 share GPU 0.
    Key 7 was trained on every GPU, key 9 on GPUs 0 and 1; slot_id % 3 names the GPU."""
    import json

    b = (ModelBuilder().input(dense_dim=1, sparse=[dict(top="s", slot_num=4)])
         .embedding(bottom="s", top="e", vec_size=2, type="LocalizedSlotSparseEmbeddingHash")
         .dense("Reshape", "e", "r", leading_dim=8))
    table = {"keys": np.array([7, 7, 7, 9, 9], np.int64),
             "slot_ids": np.array([0, 1, 2, 3, 1], np.uint64),  # GPUs 0, 1, 2, 0, 1
             "vectors": np.array([[1, 2], [10, 20], [100, 200], [3, 4], [30, 40]], np.float32)}
    art = save_model(b, tmp_path, tables=[table])
    if solver_gpu is not None:  # a hand-written config names its GPUs
        doc = json.loads(open(art.graph_config).read())
        doc["solver"] = {"gpu": solver_gpu, "batchsize": 512}
        open(art.graph_config, "w").write(json.dumps(doc))
    return art


def _run_localized(tmp_path, art, keys, **kw):
    from hugectr2onnx.loader import load_model
    from hugectr2onnx.reference import run_reference

    out = tmp_path / "loc.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models, **kw)
    feeds = {"dense": np.zeros((len(keys), 1), np.float32), "s": keys}
    got = ort.InferenceSession(str(out)).run(["r"], feeds)[0]
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models)
    ref = run_reference(graph, feeds, num_gpus=kw.get("num_gpus"))["r"]
    return got.reshape(-1, 4, 2), ref.reshape(-1, 4, 2)


# Slot 0 -> GPU 0, slot 1 -> GPU 1, slot 2 -> GPU 2, slot 3 -> GPU 0 (3 mod 3). In blocks
# (slots 0-1 GPU 0, 2 GPU 1, 3 GPU 2, or similar) the rows would differ.
LOCAL_KEYS = np.array([[[7], [7], [7], [7]], [[9], [9], [9], [9]]], np.int64)
LOCAL_WANT = [[[1, 2], [10, 20], [100, 200], [1, 2]],  # key 7 on GPUs 0, 1, 2, 0
              [[3, 4], [30, 40], [0, 0], [3, 4]]]  # key 9 on GPUs 0, 1, absent on 2, 0


def test_localized_slots_read_their_gpu_slot_mod_num_gpus(tmp_path):
    got, ref = _run_localized(tmp_path, _localized(tmp_path), LOCAL_KEYS, num_gpus=3)
    np.testing.assert_array_equal(got, LOCAL_WANT)
    np.testing.assert_array_equal(ref, LOCAL_WANT)


@pytest.mark.parametrize("gpus", [[0, 1, 2], [[0, 1], [0]]])  # one node; two nodes
def test_localized_gpu_count_from_the_solver_gpu_list(tmp_path, gpus):
    """The graph's vocabulary sizes say 1 GPU; the hand-written solver.gpu list says 3."""
    got, ref = _run_localized(tmp_path, _localized(tmp_path, gpus), LOCAL_KEYS)
    np.testing.assert_array_equal(got, LOCAL_WANT)
    np.testing.assert_array_equal(ref, LOCAL_WANT)


def test_bad_solver_gpu_list_is_named(tmp_path):
    from hugectr2onnx.errors import GraphConfigError

    art = _localized(tmp_path, "0,1")
    with pytest.raises(GraphConfigError, match="list of GPU ids") as info:
        converter.convert(str(tmp_path / "x.onnx"), art.graph_config, art.dense_model)
    assert info.value.where == "solver.gpu"

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

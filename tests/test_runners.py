"""Runners produce tensors by HugeCTR name; first_divergence pins a broken layer."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hugectr2onnx import converter, zoo
from hugectr2onnx.loader import load_model
from hugectr2onnx.runners import (OrtRunner, ReferenceRunner, compare_tensors, first_divergence,
                                  histogram, tensor_names)
from hugectr2onnx.verify import random_feeds


@pytest.fixture
def dcn_model(tmp_path):
    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), tmp_path / "dcn")
    out = tmp_path / "dcn.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file)
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(graph, 32, convert_embedding=True, seed=3)
    return graph, out, feeds


def test_runners_expose_the_same_hugectr_names(dcn_model):
    graph, path, feeds = dcn_model
    ref = ReferenceRunner(graph).run(feeds)
    got = OrtRunner(path, expose=tensor_names(graph)).run(feeds)
    names = [n for n in tensor_names(graph) if n in got]
    # every layer's output is a graph value of the ONNX model, not only the prediction
    assert {"sparse_embedding1", "reshape1", "multicross1", "fc1", "relu2", "label"} <= set(names)
    for n in names:
        assert got[n].shape == ref[n].shape, n
        np.testing.assert_allclose(got[n], ref[n], rtol=1e-5, atol=1e-5, err_msg=n)
    assert first_divergence(graph, ref, got, atol=1e-5, rtol=1e-5) is None


def test_perturbed_layer_is_pinned(dcn_model, tmp_path):
    graph, path, feeds = dcn_model
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "fc2.W":  # the second InnerProduct of the deep tower
            w = numpy_helper.to_array(init).copy()
            w[0, 0] += 0.5
            init.CopyFrom(numpy_helper.from_array(w, init.name))
            break
    else:
        pytest.fail("no initializer fc2.weight")
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    ref = ReferenceRunner(graph).run(feeds)
    got = OrtRunner(broken, expose=tensor_names(graph)).run(feeds)
    div = first_divergence(graph, ref, got, atol=1e-5, rtol=1e-5)
    assert div is not None
    assert div.layer_type == "InnerProduct" and div.diff.name == "fc2"
    assert div.diff.max_abs > 1e-3 and div.diff.mismatched > 0
    assert sum(n for _, n in div.diff.histogram) == div.diff.total


def test_external_data_read_in_place(dcn_model, tmp_path):
    graph, path, feeds = dcn_model
    model = onnx.load(str(path))
    ext = tmp_path / "ext" / "m.onnx"
    ext.parent.mkdir()
    onnx.save(model, str(ext), save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    before = sorted(p.name for p in ext.parent.iterdir())
    got = OrtRunner(ext, expose=["fc1", "not_a_value"]).run(feeds)
    assert "fc1" in got and "not_a_value" not in got
    ref = ReferenceRunner(graph).run(feeds)
    np.testing.assert_allclose(got["fc1"], ref["fc1"], rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in ext.parent.iterdir()) == before  # nothing written there


def test_nan_equals_nan_and_rtol_is_allclose():
    a = np.array([1.0, np.nan, np.inf, 100.0], np.float32)
    e = np.array([1.0, np.nan, np.inf, 100.05], np.float32)
    assert not compare_tensors("t", a, e, atol=1e-5, rtol=0).ok
    d = compare_tensors("t", a, e, atol=1e-5, rtol=1e-3)  # 0.05 <= 1e-5 + 1e-3 * 100.05
    assert d.ok and d.max_abs == pytest.approx(0.05, rel=1e-3)
    one_sided = compare_tensors("t", np.array([np.nan]), np.array([1.0]))
    assert not one_sided.ok and one_sided.nan_mismatch == 1 and one_sided.max_abs == np.inf
    shape = compare_tensors("t", np.zeros((2, 3)), np.zeros((3, 2)))
    assert not shape.ok


def test_histogram_counts_per_decade():
    h = dict(histogram(np.array([0.0, 5e-9, 5e-7, 5e-7, 0.5, 3.0])))
    assert h["0"] == 1 and h["<=1e-08"] == 1 and h["<=1e-06"] == 2
    assert h["<=1"] == 1 and h[">1"] == 1 and sum(h.values()) == 6

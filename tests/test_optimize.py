"""optimize: passes, fp16 / int8 (held-out AUC against fp32), the report and the guard."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hugectr2onnx import converter, zoo
from hugectr2onnx.cli import main
from hugectr2onnx.loader import load_model
from hugectr2onnx.optimize import auc_score, optimize_file
from hugectr2onnx.verify import random_feeds


@pytest.fixture(scope="module")
def dlrm(tmp_path_factory):
    """DLRM with BatchNorm, big tables next to a small MLP (as in production)."""
    d = tmp_path_factory.mktemp("dlrm")
    builder = zoo.dlrm(slots=8, dense_dim=13, bottom=(64, 32), top=(64, 32))
    art = zoo.save(builder, d / "hugectr", num_keys=20_000)
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    path = d / "dlrm.onnx"
    converter.convert(str(path), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file)
    heldout = random_feeds(graph, 4096, convert_embedding=True, seed=11, unseen_fraction=0.02)
    return art, graph, path, heldout


def _predict(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0].reshape(-1)


def _labels(p):
    """Labels from the fp32 model's standardized logits (its raw probabilities are nearly
    constant with random weights, which would leave every AUC near 0.5)."""
    p = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
    logit = np.log(p) - np.log1p(-p)
    z = (logit - np.median(logit)) / max(logit.std(), 1e-12)
    prob = 1.0 / (1.0 + np.exp(-3.0 * z))
    return (np.random.default_rng(5).random(p.size) < prob).astype(np.float32)


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_convert_applies_default_passes_and_no_optimize_skips(dlrm, tmp_path):
    art, _, optimized, feeds = dlrm
    plain = tmp_path / "plain.onnx"
    converter.convert(str(plain), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, optimize=False)
    assert _ops(plain).count("BatchNormalization") == 1
    assert "BatchNormalization" not in _ops(optimized)
    assert len(_ops(optimized)) < len(_ops(plain))
    np.testing.assert_allclose(_predict(optimized, feeds), _predict(plain, feeds),
                               rtol=1e-5, atol=1e-6)


def test_optimize_command_reports_counts_sizes_and_check(dlrm, tmp_path, capsys):
    art, _, _, _ = dlrm
    plain = tmp_path / "plain.onnx"
    converter.convert(str(plain), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, optimize=False)
    out = tmp_path / "opt.onnx"
    assert main(["optimize", str(plain), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    before = len(onnx.load(str(plain)).graph.node)
    after = len(onnx.load(str(out)).graph.node)
    assert after < before and f"nodes {before} -> {after}" in text
    assert "fold-batchnorm:" in text and "initializers" in text and "MB" in text
    assert "max |diff| of the prediction" in text and "wrote" in text


def test_unknown_pass_is_a_usage_error(dlrm, tmp_path, capsys):
    _, _, path, _ = dlrm
    rc = main(["optimize", str(path), "-o", str(tmp_path / "x.onnx"), "--passes", "fold-batchnom"])
    assert rc == 2 and "did you mean 'fold-batchnorm'" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_output_that_is_a_directory_is_an_output_error(dlrm, tmp_path, capsys):
    _, _, path, _ = dlrm
    (tmp_path / "out").mkdir()
    rc = main(["optimize", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 4 and "output path is a directory" in err and "internal error" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_fp16_keeps_io_types_and_auc(dlrm, tmp_path):
    _, _, path, feeds = dlrm
    fp16 = tmp_path / "fp16.onnx"
    tables = tmp_path / "fp16_tables.onnx"
    optimize_file(path, fp16, fp16=True)
    result = optimize_file(path, tables, fp16=True, fp16_tables=True)
    for p in (fp16, tables):
        onnx.checker.check_model(str(p), full_check=True)
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        types = {i.name: i.type for i in sess.get_inputs() + sess.get_outputs()}
        assert types == {"dense": "tensor(float)", "data1": "tensor(int64)",
                         "label": "tensor(float)"}
    p32, p16 = _predict(path, feeds), _predict(tables, feeds)
    labels = _labels(p32)
    assert abs(auc_score(labels, p16) - auc_score(labels, p32)) < 1e-3
    assert np.abs(p16 - p32).max() < 1e-2
    size = result.file_bytes[1] / result.file_bytes[0]
    assert 0.45 < size < 0.6, size  # about half: the int lookup index stays as it is


def test_int8_quantizes_matmuls_and_keeps_auc(dlrm, tmp_path):
    _, _, path, feeds = dlrm
    int8 = tmp_path / "int8.onnx"
    result = optimize_file(path, int8, int8=True)
    ops = _ops(int8)
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops and "Gemm" not in ops
    assert {o.domain for o in onnx.load(str(int8)).opset_import} <= {"", "ai.onnx.ml"}
    onnx.checker.check_model(str(int8), full_check=True)
    p32, p8 = _predict(path, feeds), _predict(int8, feeds)
    labels = _labels(p32)
    assert auc_score(labels, p32) > 0.7  # labels that rankings can lose AUC on
    assert abs(auc_score(labels, p8) - auc_score(labels, p32)) < 1e-3
    assert result.check.max_abs < 5e-2


def test_int8_tables_per_row_scales(dlrm, tmp_path):
    _, _, path, feeds = dlrm
    out = tmp_path / "int8t.onnx"
    result = optimize_file(path, out, int8_tables=True)
    model = onnx.load(str(out))
    table = next(t for t in model.graph.initializer if t.name.endswith(".table"))
    scale = next(t for t in model.graph.initializer if t.name.endswith(".row_scale"))
    assert table.data_type == onnx.TensorProto.INT8
    assert list(scale.dims) == [table.dims[0], 1]
    assert result.file_bytes[1] / result.file_bytes[0] < 0.4
    p32, pq = _predict(path, feeds), _predict(out, feeds)
    labels = _labels(p32)
    assert abs(auc_score(labels, pq) - auc_score(labels, p32)) < 1e-3


def test_max_auc_drop_refuses_and_writes_nothing(dlrm, tmp_path, capsys):
    _, _, path, feeds = dlrm
    data = tmp_path / "heldout.npz"
    p32 = _predict(path, feeds)
    np.savez(data, dense=feeds["dense"], data1=feeds["data1"], label=_labels(p32))
    out = tmp_path / "int8.onnx"
    rc = main(["optimize", str(path), "-o", str(out), "--int8", "--data", str(data),
               "--max-auc-drop", "-0.5"])  # demands a gain of 0.5: always refused
    text = capsys.readouterr().out
    assert rc == 1 and "REFUSED" in text and "AUC" in text
    assert list(tmp_path.iterdir()) == [data]
    rc = main(["optimize", str(path), "-o", str(out), "--int8", "--data", str(data),
               "--max-auc-drop", "1e-3"])
    text = capsys.readouterr().out
    assert rc == 0 and "AUC" in text and "logloss" in text and out.exists()


def test_fold_constants_pass_is_portable(tmp_path):
    art = zoo.save(zoo.dcn(**zoo.SMALL["dcn"]), tmp_path / "dcn")
    path = tmp_path / "plain.onnx"  # as emitted: Dropout and fan-out copies are Identities
    converter.convert(str(path), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, optimize=False)
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    feeds = random_feeds(graph, 64, convert_embedding=True, seed=2)
    out = tmp_path / "folded.onnx"
    result = optimize_file(path, out, passes=["fold-constants", "dead-nodes"])
    steps = dict(result.report.steps)
    assert steps["fold-constants"] >= 4 and "Identity" not in _ops(out)
    assert result.report.after.nodes == result.report.before.nodes - steps["fold-constants"]
    model = onnx.load(str(out))
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx.ml"}
    onnx.checker.check_model(model, full_check=True)
    np.testing.assert_allclose(_predict(out, feeds), _predict(path, feeds), rtol=1e-6, atol=1e-7)


def _norm_dataset(path, onnx_path, feeds, labels):
    from hugectr2onnx.data import DataLayout
    from hugectr2onnx.data.writers import write_norm

    layout = DataLayout.from_onnx(onnx_path)
    write_norm(path, layout, labels.reshape(-1, 1), feeds["dense"], [feeds["data1"]])
    return path


def test_guard_on_a_hugectr_norm_dataset(dlrm, tmp_path, capsys):
    _, _, path, feeds = dlrm
    labels = _labels(_predict(path, feeds))
    data = _norm_dataset(tmp_path / "heldout.bin", path, feeds, labels)
    out = tmp_path / "int8.onnx"
    rc = main(["optimize", str(path), "-o", str(out), "--int8", "--int8-tables",
               "--data", str(data), "--format", "norm", "--max-auc-drop", "1e-3"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"checked on 4096 samples of {data}" in text and "AUC" in text
    line = next(l for l in text.splitlines() if "AUC" in l)
    before, after = (float(x) for x in line.split("AUC ")[1].split(" (")[0].split(" -> "))
    p32 = _predict(path, feeds)
    assert before == pytest.approx(auc_score(labels, p32), abs=1e-6)
    assert abs(after - before) < 1e-3
    # the optimized model keeps the metadata predict reads its dataset layout from
    assert main(["predict", "--onnx", str(out), "--data", str(data), "--format", "norm"]) == 0
    assert f"AUC {after:.6f}" in capsys.readouterr().out
    assert main(["optimize", str(path), "-o", str(tmp_path / "y.onnx"), "--max-auc-drop",
                 "0.01"]) == 2
    assert "--data" in capsys.readouterr().err


def test_external_data_model_in_and_out(dlrm, tmp_path):
    art, _, _, feeds = dlrm
    src = tmp_path / "in" / "m.onnx"
    src.parent.mkdir()
    converter.convert(str(src), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, external_data="always")
    assert (src.parent / "m.onnx.data").is_file()
    out = tmp_path / "out" / "m16.onnx"
    out.parent.mkdir()
    result = optimize_file(src, out, fp16_tables=True, external_data="always")
    assert sorted(p.name for p in out.parent.iterdir()) == ["m16.onnx", "m16.onnx.data"]
    assert result.files == [str(out.parent / "m16.onnx.data"), str(out)]
    np.testing.assert_allclose(_predict(out, feeds), _predict(src, feeds), atol=2e-3)


@pytest.mark.parametrize("lookup", ["direct", "hash", "label_encoder"])
@pytest.mark.parametrize("vec", [4, 80])  # GatherND rows, Gather rows (embedding.gather_rows)
def test_precision_on_every_lookup_form(tmp_path, lookup, vec):
    builder = zoo.dcn(**dict(zoo.SMALL["dcn"], vec=vec))
    art = zoo.save(builder, tmp_path / "m", hashed=lookup != "direct", num_keys=500)
    path = tmp_path / "m.onnx"
    converter.convert(str(path), art.graph_config, art.dense_model, True, art.sparse_models,
                      lookup=lookup)
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models)
    feeds = random_feeds(graph, 256, convert_embedding=True, seed=4)
    want = _predict(path, feeds)
    for opts, tol in ((dict(fp16=True, fp16_tables=True), 2e-2),
                      (dict(int8=True, int8_tables=True), 5e-2)):
        out = tmp_path / "opt.onnx"
        result = optimize_file(path, out, **opts)
        steps = dict(result.report.steps)
        assert steps.get("fp16 tables", steps.get("int8 tables")) == 1, steps
        onnx.checker.check_model(str(out), full_check=True)
        assert np.abs(_predict(out, feeds) - want).max() < tol, opts


def test_external_tables_are_memory_mapped(dlrm, tmp_path):
    from hugectr2onnx.optimize import load_mapped

    art, _, _, _ = dlrm
    src = tmp_path / "m.onnx"
    converter.convert(str(src), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, external_data="always")
    result = load_mapped(src)
    table = next(t for n, t in result.tensors.items() if n.endswith(".table"))
    assert isinstance(table, np.memmap) and table.shape == (20_001, 32)
    full = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(src)).graph.initializer}
    for name, t in result.tensors.items():
        np.testing.assert_array_equal(np.asarray(t), full[name], err_msg=name)


def test_metadata_and_producer_survive(dlrm, tmp_path):
    _, _, path, _ = dlrm
    before = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in before.metadata_props}
    assert any(k.startswith("hugectr2onnx.") for k in meta)
    for opts in (dict(int8=True), dict(fp16=True, fp16_tables=True), dict(int8_tables=True)):
        out = tmp_path / "o.onnx"
        optimize_file(path, out, check=False, **opts)
        after = onnx.load(str(out), load_external_data=False)
        got = {p.key: p.value for p in after.metadata_props}
        assert {k: got.get(k) for k in meta} == meta, opts
        assert after.producer_name == before.producer_name == "hugectr2onnx"

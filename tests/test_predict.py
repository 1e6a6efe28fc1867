"""predict end to end: zoo models converted, datasets written in every format, predictions
compared with ONNX Runtime run directly on the arrays the data was made from (the same
consecutive batches), metrics with scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hugectr2onnx import converter, zoo
from hugectr2onnx.cli import main
from hugectr2onnx.data import DataLayout
from hugectr2onnx.data.writers import (write_file_list, write_norm, write_parquet, write_raw,
                                       write_rawasync)
from hugectr2onnx.onnx_backend.metadata import read_metadata
from hugectr2onnx.predict import predict, write_predictions

sklearn_metrics = pytest.importorskip("sklearn.metrics")

N = 700
BATCH = 128


def convert(tmp_path, name, key_type="I32", **kw):
    builder = zoo.MODELS[name](**{**zoo.SMALL[name], **kw})
    art = zoo.save(builder, tmp_path / name)
    out = tmp_path / f"{name}.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, key_type=key_type)
    return out


def make_samples(layout: DataLayout, n=N, seed=0, dense_ints=False):
    """Keys mostly from the tables' range (0..399), some unseen, padding where absent."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, layout.label_dim)) < 0.4).astype(np.float32)
    dense = (rng.integers(0, 50, (n, layout.dense_dim)) if dense_ints
             else rng.standard_normal((n, layout.dense_dim)).astype(np.float32))
    keys = []
    for s in layout.sparse:
        k = rng.integers(0, 450, (n, s.slot_num, s.max_nnz))
        if not s.is_fixed_length:
            count = rng.integers(0, np.asarray(s.nnz_per_slot) + 1, (n, s.slot_num))
        else:
            count = np.broadcast_to(np.asarray(s.nnz_per_slot), (n, s.slot_num))
        keys.append(np.where(np.arange(s.max_nnz) < count[:, :, None], k, layout.padding_key))
    return labels, dense, keys


def ort_reference(onnx_path, layout, dense, keys, batch=BATCH):
    """Outputs of a bare session over the same consecutive batches."""
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    outs = {n: [] for n in names}
    for lo in range(0, dense.shape[0], batch):
        feeds = {layout.dense_name: dense[lo:lo + batch].astype(np.float32)}
        feeds.update((s.name, k[lo:lo + batch].astype(np.int64)) for s, k in zip(layout.sparse, keys))
        for n, v in zip(names, sess.run(names, feeds)):
            outs[n].append(v.reshape(v.shape[0], -1))
    return {n: np.concatenate(v) for n, v in outs.items()}


def check_metrics(result, labels):
    for name, m in result.metrics.items():
        y, p = labels.ravel(), result.outputs[name].ravel().astype(np.float64)
        assert m["auc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, p), abs=1e-9)
        assert m["logloss"] == pytest.approx(sklearn_metrics.log_loss(y, p), abs=1e-9)


@pytest.mark.parametrize("name,kw", [("din_try", {}), ("dlrm", {}),
                                     ("wdl", dict(nnz=3, fixed=False, combiner="mean"))])
@pytest.mark.parametrize("checksum", [False, True])
def test_norm_across_files_matches_ort(tmp_path, name, kw, checksum):
    """din_try's PReLU_Dice uses batch statistics: batches must run across files."""
    onnx_path = convert(tmp_path, name, **kw)
    layout = DataLayout.from_onnx(onnx_path)
    labels, dense, keys = make_samples(layout)
    cut = 300  # not a multiple of the batch
    files = [tmp_path / "a.bin", tmp_path / "b.bin"]
    write_norm(files[0], layout, labels[:cut], dense[:cut], [k[:cut] for k in keys],
               checksum=checksum)
    write_norm(files[1], layout, labels[cut:], dense[cut:], [k[cut:] for k in keys],
               checksum=checksum)
    write_file_list(tmp_path / "list.txt", [str(f) for f in files])
    result = predict(onnx_path, tmp_path / "list.txt", "norm", batch_size=BATCH)
    want = ort_reference(onnx_path, layout, dense, keys)
    assert result.samples == N
    for n, v in want.items():
        np.testing.assert_allclose(result.outputs[n], v, rtol=0, atol=1e-6)
    check_metrics(result, labels)


def test_raw_and_rawasync(tmp_path):
    onnx_path = convert(tmp_path, "dlrm")
    layout = DataLayout.from_onnx(onnx_path)
    labels, dense, keys = make_samples(layout, dense_ints=True)
    write_raw(tmp_path / "r.bin", layout, labels, dense, keys)
    write_rawasync(tmp_path / "ra.bin", layout, labels, dense, keys)
    logged = np.log(dense.astype(np.float32) + np.float32(1))
    want = ort_reference(onnx_path, layout, logged, keys)
    for path, fmt in ((tmp_path / "r.bin", "raw"), (tmp_path / "ra.bin", "rawasync")):
        result = predict(onnx_path, path, fmt, batch_size=BATCH)
        np.testing.assert_allclose(result.outputs["label"], want["label"], atol=1e-6)
        check_metrics(result, labels)


def test_parquet_offsets_from_metadata_and_override(tmp_path):
    onnx_path = convert(tmp_path, "wdl", nnz=3, fixed=False, combiner="mean")
    layout = DataLayout.from_onnx(onnx_path)
    labels, dense, keys = make_samples(layout)
    # stored keys are small; the model's keys are stored + offset (slot_size_array 5 per column)
    sizes = [5] * layout.slot_num
    lay = layout.with_options(slot_size_array=sizes)
    offsets = lay.key_offsets()
    stored = []
    s = 0
    for inp, k in zip(layout.sparse, keys):
        off = offsets[s:s + inp.slot_num][None, :, None]
        stored.append(np.where(k == layout.padding_key, k, np.maximum(k - off, 0)))
        s += inp.slot_num
    model_keys = []
    s = 0
    for inp, k in zip(layout.sparse, stored):
        off = offsets[s:s + inp.slot_num][None, :, None]
        model_keys.append(np.where(k == layout.padding_key, k, k + off))
        s += inp.slot_num
    file_list = write_parquet(tmp_path / "pq", layout, labels, dense, stored, files=3)
    result = predict(onnx_path, file_list, "parquet", batch_size=BATCH, slot_size_array=sizes)
    want = ort_reference(onnx_path, layout, dense, model_keys)
    np.testing.assert_allclose(result.outputs["label"], want["label"], atol=1e-6)
    check_metrics(result, labels)
    # recorded at convert time, the offsets need no option
    art_dir = tmp_path / "wdl"
    out2 = tmp_path / "wdl2.onnx"
    converter.convert(str(out2), str(art_dir / "model.json"), str(art_dir / "model_dense_0.model"),
                      True, [str(art_dir / "model0_sparse_0.model"),
                             str(art_dir / "model1_sparse_0.model")], None, key_type="I32",
                      slot_size_array=tuple(sizes))
    again = predict(out2, file_list, "parquet", batch_size=BATCH)
    np.testing.assert_allclose(again.outputs["label"], want["label"], atol=1e-6)


def test_metadata_describes_the_model(tmp_path):
    onnx_path = convert(tmp_path, "wdl", key_type="I64", nnz=3, fixed=False, combiner="mean")
    model = onnx.load(str(onnx_path))
    assert model.producer_name == "hugectr2onnx"
    meta = read_metadata(model)
    assert meta["schema"] == 1
    assert len(meta["graph_sha256"]) == 64
    data = meta["data"]
    assert data["key_type"] == "I64" and data["padding_key"] == -1
    assert [s["name"] for s in data["sparse"]] == ["deep_data", "wide_data"]
    assert data["sparse"][0]["is_fixed_length"] is False
    assert data["sparse"][0]["nnz_per_slot"] == [3] * 4
    emb = {e["name"]: e for e in meta["embeddings"]}
    assert emb["sparse_embedding2"]["combiner"] == "mean"
    assert emb["sparse_embedding2"]["input"] == "wide_data"
    assert emb["sparse_embedding2"]["num_keys"] == 200


def test_layout_without_metadata_from_inputs(tmp_path):
    onnx_path = convert(tmp_path, "dlrm")
    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    layout = DataLayout.from_onnx(bare)
    assert layout.dense_name == "dense" and layout.dense_dim == 3
    assert [(s.name, s.slot_num, s.max_nnz) for s in layout.sparse] == [("data1", 4, 1)]
    from hugectr2onnx.inspection import format_report, inspect_model
    info = inspect_model(bare)
    assert info["metadata"] == {} and "metadata: none" in format_report(info)
    assert info["inputs"][1]["feed"].startswith("int64 keys")


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def scored(tmp_path):
    onnx_path = convert(tmp_path, "dlrm")
    layout = DataLayout.from_onnx(onnx_path)
    labels, dense, keys = make_samples(layout)
    write_norm(tmp_path / "a.bin", layout, labels, dense, keys)
    return onnx_path, tmp_path / "a.bin", labels, ort_reference(onnx_path, layout, dense, keys)


def test_cli_predict_json_only_json(scored, capsys, tmp_path):
    onnx_path, data, labels, want = scored
    out = tmp_path / "p.npz"
    rc = main(["predict", "--onnx", str(onnx_path), "--data", str(data), "--format", "norm",
               "--json", "-o", str(out), "--batch-size", str(BATCH)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["samples"] == N and doc["samples_per_s"] > 0
    auc = sklearn_metrics.roc_auc_score(labels.ravel(), want["label"].ravel())
    assert doc["outputs"]["label"]["auc"] == pytest.approx(auc, abs=1e-6)
    np.testing.assert_allclose(np.load(out)["label"], want["label"], atol=1e-6)


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".parquet"])
def test_output_formats(tmp_path, suffix):
    outputs = {"label": np.arange(6, dtype=np.float32).reshape(6, 1) / 7}
    write_predictions(tmp_path / f"p{suffix}", outputs)
    if suffix == ".npy":
        got = np.load(tmp_path / "p.npy")
    elif suffix == ".csv":
        lines = (tmp_path / "p.csv").read_text().splitlines()
        assert lines[0] == "label"
        got = np.array([float(x) for x in lines[1:]]).reshape(6, 1)
    else:
        import pyarrow.parquet as pq
        got = pq.read_table(tmp_path / "p.parquet").column("label").to_numpy().reshape(6, 1)
    np.testing.assert_allclose(got, outputs["label"], rtol=1e-7)
    two = {"a": np.zeros((2, 2), np.float32), "b": np.ones((2, 1), np.float32)}
    write_predictions(tmp_path / "two.csv", two)
    assert (tmp_path / "two.csv").read_text().splitlines()[0] == "a_0,a_1,b"


def test_cli_bad_data_leaves_no_output(scored, tmp_path, capsys):
    onnx_path, data, _, _ = scored
    data.write_bytes(data.read_bytes()[:-3])
    out = tmp_path / "p.npz"
    rc = main(["predict", "--onnx", str(onnx_path), "--data", str(data), "--format", "norm",
               "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 3 and "a.bin" in err and "record" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not any(p.name.startswith(".p.npz") for p in tmp_path.iterdir())
    rc = main(["predict", "--onnx", str(onnx_path), "--data", str(data), "--format", "norm",
               "-o", str(tmp_path / "p.txt")])
    assert rc == 2


def test_cli_inspect(scored, capsys):
    onnx_path = scored[0]
    assert main(["inspect", str(onnx_path)]) == 0
    text = capsys.readouterr().out
    assert "data1: int64 [batch, 4, 1]" in text and "padding key -1" in text
    assert "GatherND" in text and "lookup index" in text
    assert main(["inspect", "--json", str(onnx_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in info["inputs"]] == ["dense", "data1"]
    assert info["opsets"]["ai.onnx"] == 17
    sizes = info["initializers"]
    assert sizes["table_bytes"] == 201 * 4 * 4  # zero row + 200 keys x vec 4
    assert sizes["dense_bytes"] + sizes["table_bytes"] + sizes["index_bytes"] == sizes["bytes"]
    assert info["nodes"] == sum(info["ops"].values())
    assert info["metadata"]["data"]["key_type"] == "I32"


def test_convert_summary_lists_io(tmp_path, capsys):
    art = zoo.save(zoo.MODELS["dlrm"](**zoo.SMALL["dlrm"]), tmp_path / "m")
    rc = main(["convert", "--graph", art.graph_config, "--dense", art.dense_model,
               "--sparse", *art.sparse_models, "--ntp", art.ntp_file, "--convert-embedding",
               "-o", str(tmp_path / "m.onnx"), "--slot-size-array", "3", "4"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "input data1: int64 [batch, 4, 1]" in out and "output label: float32 [batch, 1]" in out
    assert read_metadata(tmp_path / "m.onnx")["data"]["slot_size_array"] == [3, 4]


def test_parquet_two_labels_and_no_labels(tmp_path):
    """mmoe: two labels, split in the model's (sorted) order; without label columns the
    predictions still come, with no metrics."""
    onnx_path = convert(tmp_path, "mmoe_parquet")
    layout = DataLayout.from_onnx(onnx_path)
    assert layout.label_names == ("50k_label", "married_label")
    labels, dense, keys = make_samples(layout)
    labels[:, 1] = 1 - labels[:, 1]  # the two label columns differ
    file_list = write_parquet(tmp_path / "pq", layout, labels, dense, keys, files=2)
    result = predict(onnx_path, file_list, "parquet", batch_size=BATCH)
    want = ort_reference(onnx_path, layout, dense, keys)
    for j, name in enumerate(layout.label_names):
        np.testing.assert_allclose(result.outputs[name], want[name], atol=1e-6)
        auc = sklearn_metrics.roc_auc_score(labels[:, j], want[name].ravel())
        assert result.metrics[name]["auc"] == pytest.approx(auc, abs=1e-6)
    unlabeled = write_parquet(tmp_path / "pq2", layout, None, dense, keys)
    bare = predict(onnx_path, unlabeled, "parquet", batch_size=BATCH)
    assert bare.metrics == {} and bare.labels is None and bare.samples == N
    assert "no labels" in bare.summary()


def test_inspect_external_data(tmp_path):
    from hugectr2onnx.inspection import inspect_model
    art = zoo.save(zoo.MODELS["dlrm"](**zoo.SMALL["dlrm"]), tmp_path / "m")
    out = tmp_path / "ext.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, external_data="always")
    info = inspect_model(out)
    files = info["external_data"]
    assert [f["file"] for f in files] == ["ext.onnx.data"] and files[0]["exists"]
    assert files[0]["tensor_bytes"] >= info["initializers"]["table_bytes"] > 0
    assert files[0]["file_bytes"] >= files[0]["tensor_bytes"]


def test_models_that_datasets_cannot_feed(tmp_path, capsys):
    art = zoo.save(zoo.MODELS["wdl"](**{**zoo.SMALL["wdl"], "nnz": 2, "fixed": False}),
                   tmp_path / "m")
    vectors = tmp_path / "vectors.onnx"
    converter.convert(str(vectors), art.graph_config, art.dense_model, False, None, None)
    nopad = tmp_path / "nopad.onnx"
    converter.convert(str(nopad), art.graph_config, art.dense_model, True, art.sparse_models,
                      None, padding_key=None)
    (tmp_path / "a.bin").write_bytes(b"")
    for model, message in ((vectors, "embedding vectors"), (nopad, "no padding key")):
        rc = main(["predict", "--onnx", str(model), "--data", str(tmp_path / "a.bin"),
                   "--format", "norm"])
        assert rc == 2 and message in capsys.readouterr().err


def test_count_samples_for_progress(tmp_path):
    from hugectr2onnx.data import count_samples
    onnx_path = convert(tmp_path, "dlrm")
    layout = DataLayout.from_onnx(onnx_path)
    labels, dense, keys = make_samples(layout, dense_ints=True)
    write_norm(tmp_path / "a.bin", layout, labels, dense, keys, checksum=True)
    write_norm(tmp_path / "b.bin", layout, labels[:5], dense[:5], [k[:5] for k in keys])
    write_file_list(tmp_path / "l.txt", [str(tmp_path / "a.bin"), str(tmp_path / "b.bin")])
    assert count_samples(tmp_path / "l.txt", "norm", layout) == N + 5
    write_rawasync(tmp_path / "r.bin", layout, labels, dense, keys)
    assert count_samples(tmp_path / "r.bin", "rawasync", layout) == N
    pq_list = write_parquet(tmp_path / "pq", layout, labels, dense, keys, files=3)
    assert count_samples(pq_list, "parquet", layout) == N
    assert count_samples(tmp_path / "missing.txt", "norm", layout) is None
    result = predict(onnx_path, tmp_path / "l.txt", "norm", progress=True, num_samples=100)
    assert result.samples == 100

"""predict with embeddings from Redis, and on Ray: the numbers of the local in-ONNX predict."""

import numpy as np
import pytest

from hugectr2onnx import zoo
from hugectr2onnx.cli import main
from hugectr2onnx.data import DataLayout
from hugectr2onnx.data.writers import write_parquet
from hugectr2onnx.predict import predict
from hugectr2onnx.redis import load_tables
from redis_models import build, flush

N = 3000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A multi-hot mean-pooled W&D, its Parquet dataset (keys seen, unseen and padded)."""
    d = tmp_path_factory.mktemp("wdl")
    m = build(d, zoo.wdl(**zoo.SMALL["wdl"], nnz=2, fixed=False, combiner="mean"),
              num_keys=500)
    layout = DataLayout.from_onnx(m.full_onnx)
    feeds = m.feeds(N, seed=4)
    labels = np.random.default_rng(0).integers(0, 2, (N, 1)).astype(np.float32)
    keys = [feeds[s.name] for s in layout.sparse]
    file_list = write_parquet(d / "pq", layout, labels, feeds[layout.dense_name], keys, files=3)
    local = predict(m.full_onnx, str(file_list), "parquet", batch_size=512)
    return m, file_list, local


def test_local_predict_with_redis_embeddings(any_url, setup, tmp_path, capsys):
    m, file_list, local = setup
    flush(any_url)
    load_tables(any_url, "wdl", m.art.graph_config, m.art.sparse_models)
    out = tmp_path / "p.parquet"
    rc = main(["predict", "--onnx", m.dense_onnx, "--graph", m.art.graph_config,
               "--embeddings", f"{any_url}/wdl", "--data", str(file_list), "--format",
               "parquet", "--batch-size", "700", "-o", str(out), "--cache-keys", "256"])
    assert rc == 0, capsys.readouterr().err
    import pyarrow.parquet as pq

    got = pq.read_table(out).column("label").to_numpy()
    np.testing.assert_allclose(got, local.outputs["label"][:, 0], atol=1e-6, rtol=0)
    assert "AUC" in capsys.readouterr().out


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_matches_local(ray_local, redis_url, setup, tmp_path, capsys):
    """--engine ray writes the local predict's numbers, in-ONNX and with Redis embeddings."""
    import pyarrow.parquet as pq

    m, file_list, local = setup
    out = tmp_path / "ray.parquet"
    rc = main(["predict", "--engine", "ray", "--onnx", m.full_onnx, "--data", str(file_list),
               "--format", "parquet", "--batch-size", "512", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    got = pq.read_table(out).column("label").to_numpy()
    assert np.array_equal(got, local.outputs["label"][:, 0])  # identical, not just close
    text = capsys.readouterr().out
    assert f"{local.metrics['label']['auc']:.6f}" in text

    flush(redis_url)
    load_tables(redis_url, "wdl", m.art.graph_config, m.art.sparse_models)
    out2 = tmp_path / "ray_redis.parquet"
    rc = main(["predict", "--engine", "ray", "--onnx", m.dense_onnx, "--graph",
               m.art.graph_config, "--embeddings", f"{redis_url}/wdl", "--data",
               str(file_list), "--format", "parquet", "--batch-size", "512", "-o", str(out2)])
    assert rc == 0, capsys.readouterr().err
    got2 = pq.read_table(out2).column("label").to_numpy()
    np.testing.assert_allclose(got2, local.outputs["label"][:, 0], atol=1e-6, rtol=0)


def test_ray_needs_parquet(setup, capsys):
    m, file_list, _ = setup
    rc = main(["predict", "--engine", "ray", "--onnx", m.full_onnx, "--data", str(file_list),
               "--format", "norm"])
    assert rc == 2 and "Parquet" in capsys.readouterr().err

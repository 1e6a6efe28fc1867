"""The Redis scorer reproduces the in-ONNX lookup's predictions, standalone and on a cluster."""

import numpy as np
import pytest

from hugectr2onnx import zoo
from hugectr2onnx.errors import UsageError
from hugectr2onnx.redis import RedisScorer, load_tables
from hugectr2onnx.reference import embedding_reference
from redis_models import build, flush, write_hps_tables

SMALL = zoo.SMALL


@pytest.fixture(scope="module")
def wdl_mean(tmp_path_factory):
    """Multi-hot, variable-length slots pooled by mean: padding and the mean's divisor count."""
    d = tmp_path_factory.mktemp("wdl")
    return build(d, zoo.wdl(**SMALL["wdl"], nnz=3, fixed=False, combiner="mean"))


@pytest.fixture(scope="module")
def dcn(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dcn"), zoo.dcn(**SMALL["dcn"]))


def test_independent_writer_read_back(any_url, wdl_mean):
    """Tables written by an independent HPS-layout writer give the in-ONNX predictions."""
    flush(any_url)
    write_hps_tables(any_url, "wdl", wdl_mean.graph)
    feeds = wdl_mean.feeds(64, seed=3)
    with RedisScorer(wdl_mean.dense_onnx, wdl_mean.art.graph_config,
                     f"{any_url}/wdl") as scorer:
        got = scorer.predict(feeds)
        pooled = scorer.embed(feeds)
    want = wdl_mean.in_onnx(feeds)
    assert set(got) == set(want) == {"label"}
    np.testing.assert_allclose(got["label"], want["label"], atol=1e-6, rtol=0)
    for emb in wdl_mean.graph.embeddings:  # the pooled vectors against the numpy oracle
        np.testing.assert_allclose(pooled[emb.top],
                                   embedding_reference(emb, feeds[emb.bottom]), atol=1e-6)
    assert np.abs(pooled["sparse_embedding1"]).sum() > 0


def test_hps_names_and_partition_count(redis_url, dcn):
    """--tables and --partitions match an HPS configuration's embedding_table_names and
    num_partitions; a wrong partition count is refused, not read as zeros."""
    flush(redis_url)
    write_hps_tables(redis_url, "dcn", dcn.graph, names=["sparse_embedding0"], partitions=5)
    feeds = dcn.feeds(32, seed=1)
    with RedisScorer(dcn.dense_onnx, dcn.art.graph_config, f"{redis_url}/dcn",
                     tables=["sparse_embedding0"], partitions=5) as scorer:
        got = scorer.predict(feeds)
    np.testing.assert_allclose(got["label"], dcn.in_onnx(feeds)["label"], atol=1e-6, rtol=0)
    with pytest.raises(UsageError, match="more than 4 partitions"):
        RedisScorer(dcn.dense_onnx, dcn.art.graph_config, f"{redis_url}/dcn",
                    tables=["sparse_embedding0"], partitions=4)
    with pytest.raises(UsageError, match="no table hps_et.dcn.sparse_embedding1"):
        RedisScorer(dcn.dense_onnx, dcn.art.graph_config, f"{redis_url}/dcn")


def test_load_then_score_with_cache(any_url, dcn):
    flush(any_url)
    report = load_tables(any_url, "dcn", dcn.art.graph_config, dcn.art.sparse_models,
                         partitions=7)
    assert report.tables[0].stored == dcn.graph.embeddings[0].table.num_keys
    with RedisScorer(dcn.dense_onnx, dcn.art.graph_config, f"{any_url}/dcn", partitions=7,
                     cache_keys=64) as scorer:
        for seed in range(3):  # the cache fills, evicts, and answers
            feeds = dcn.feeds(48, seed=seed)
            np.testing.assert_allclose(scorer.predict(feeds)["label"],
                                       dcn.in_onnx(feeds)["label"], atol=1e-6, rtol=0)
        cache = scorer.tables.caches[0]
        assert cache.hits > 0 and cache.lookups > cache.hits


def test_unseen_and_padding_only(redis_url, dcn):
    """Batches of nothing but padding or unseen keys pool to zeros (as in-ONNX)."""
    flush(redis_url)
    load_tables(redis_url, "dcn", dcn.art.graph_config, dcn.art.sparse_models)
    feeds = dcn.feeds(8)
    (name,) = [e.bottom for e in dcn.graph.embeddings]
    with RedisScorer(dcn.dense_onnx, dcn.art.graph_config, f"{redis_url}/dcn") as scorer:
        for fill in (-1, 2 ** 61 + 17):
            f = dict(feeds, **{name: np.full_like(feeds[name], fill)})
            assert not scorer.embed(f)[dcn.graph.embeddings[0].top].any()
            np.testing.assert_allclose(scorer.predict(f)["label"], dcn.in_onnx(f)["label"],
                                       atol=1e-6, rtol=0)


def test_refuses_the_in_onnx_model(redis_url, dcn):
    with pytest.raises(UsageError, match="dense-only"):
        RedisScorer(dcn.full_onnx, dcn.art.graph_config, f"{redis_url}/dcn")

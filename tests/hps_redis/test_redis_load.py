"""Bulk load: HPS's layout byte for byte, resumable, idempotent, safe with foreign data."""

import numpy as np
import pytest

from hugectr2onnx import zoo
from hugectr2onnx.cli import main
from hugectr2onnx.errors import ServiceError, UsageError
from hugectr2onnx.redis import load_tables
from redis_models import client, flush, mixer_by_hand


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    d = tmp_path_factory.mktemp("wdl")
    return zoo.save(zoo.wdl(**zoo.SMALL["wdl"]), d, num_keys=3000, hashed=True)


def stored_by_hand(url, art, model="wdl", partitions=16, key_bytes=8):
    """Check every key's vector where HPS would look for it (independent of our code)."""
    from hugectr2onnx.loader import load_model

    graph = load_model(art.graph_config, art.dense_model, art.sparse_models)
    r = client(url)
    for emb in graph.embeddings:
        keys = emb.table.keys[:200].tolist()
        for key, vec in zip(keys, np.asarray(emb.table.vectors[:200])):
            name = f"hps_et{{hps_et.{model}.{emb.top}/p{mixer_by_hand(key) % partitions}}}v"
            field = int(key).to_bytes(key_bytes, "little", signed=key_bytes == 8)
            assert r.hget(name, field) == vec.astype("<f4").tobytes(), (name, key)
        total = sum(r.hlen(f"hps_et{{hps_et.{model}.{emb.top}/p{p}}}v")
                    for p in range(partitions))
        assert total == emb.table.num_keys
    r.close()


def test_layout_byte_for_byte(any_url, art):
    flush(any_url)
    report = load_tables(any_url, "wdl", art.graph_config, art.sparse_models)
    assert [t.stored for t in report.tables] == [t.rows for t in report.tables]
    assert report.payload_bytes == sum(t.rows * (8 + 4 * t.vec_size) for t in report.tables)
    stored_by_hand(any_url, art)


def test_interrupted_load_resumes_and_reruns_are_no_ops(any_url, art):
    flush(any_url)
    with pytest.raises(ServiceError, match="interrupted"):
        load_tables(any_url, "wdl", art.graph_config, art.sparse_models, chunk_bytes=20_000,
                    stop_after_chunks=3)
    report = load_tables(any_url, "wdl", art.graph_config, art.sparse_models,
                         chunk_bytes=20_000)
    first, second = report.tables
    assert first.skipped and second.resumed_at > 0  # table 1 had finished, table 2 resumes
    assert second.rows_sent == second.rows - second.resumed_at
    stored_by_hand(any_url, art)
    again = load_tables(any_url, "wdl", art.graph_config, art.sparse_models)
    assert all(t.skipped for t in again.tables) and again.payload_bytes == 0
    stored_by_hand(any_url, art)


def test_foreign_data_and_new_snapshots_need_replace(redis_url, art, tmp_path):
    flush(redis_url)
    r = client(redis_url)
    r.hset("hps_et{hps_et.wdl.sparse_embedding1/p3}v", b"\x01" * 8, b"\x00" * 16)
    with pytest.raises(UsageError, match="did not write"):
        load_tables(redis_url, "wdl", art.graph_config, art.sparse_models)
    load_tables(redis_url, "wdl", art.graph_config, art.sparse_models, replace=True)
    stored_by_hand(redis_url, art)  # the foreign field is gone: HLEN matches the file
    other = zoo.save(zoo.wdl(**zoo.SMALL["wdl"]), tmp_path, num_keys=500, hashed=True, seed=9)
    with pytest.raises(UsageError, match="another snapshot"):
        load_tables(redis_url, "wdl", other.graph_config, other.sparse_models)
    load_tables(redis_url, "wdl", other.graph_config, other.sparse_models, replace=True)
    stored_by_hand(redis_url, other)
    with pytest.raises(UsageError, match="another snapshot"):  # partition count is part of it
        load_tables(redis_url, "wdl", other.graph_config, other.sparse_models, partitions=8)
    r.close()


def test_four_byte_keys_and_names(redis_url, tmp_path):
    art = zoo.save(zoo.wdl(**zoo.SMALL["wdl"]), tmp_path, num_keys=400, hashed=True,
                   key_bits=32)
    flush(redis_url)
    load_tables(redis_url, "m-1", art.graph_config, art.sparse_models, key_bytes=4,
                partitions=3, tables=["t0", "t1"])
    r = client(redis_url)
    names = sorted(k.decode() for k in r.keys("hps_et*"))
    assert names == sorted(f"hps_et{{hps_et.m-1.t{t}/p{p}}}v" for t in (0, 1) for p in range(3))
    fields = r.hkeys("hps_et{hps_et.m-1.t0/p0}v")
    assert fields and all(len(f) == 4 for f in fields)
    r.close()
    with pytest.raises(UsageError, match="1 table names given, the graph has 2"):
        load_tables(redis_url, "m", art.graph_config, art.sparse_models, tables=["a"])
    with pytest.raises(UsageError, match="valid HPS name"):
        load_tables(redis_url, "m.x", art.graph_config, art.sparse_models)


def test_cli(redis_url, art, capsys):
    flush(redis_url)
    args = ["redis", "load", "--url", redis_url, "--model", "wdl", "--graph",
            art.graph_config, "--sparse", *art.sparse_models, "--partitions", "4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "MB/s" in out and "hps_et.wdl.sparse_embedding1" in out and "loaded" in out
    assert main(args) == 0
    assert "already complete" in capsys.readouterr().out
    assert main(args[:-2] + ["--partitions", "0"]) == 2
    assert "--partitions must be at least 1" in capsys.readouterr().err


def test_four_byte_keys_score(redis_url, tmp_path):
    from hugectr2onnx.redis import RedisScorer
    from redis_models import build

    flush(redis_url)
    m32 = build(tmp_path / "k32", zoo.dcn(**zoo.SMALL["dcn"]), num_keys=400, key_bits=32)
    load_tables(redis_url, "k", m32.art.graph_config, m32.art.sparse_models, key_bytes=4)
    feeds = m32.feeds(64, seed=2)  # unseen keys here are mostly beyond 2^32
    with RedisScorer(m32.dense_onnx, m32.art.graph_config, f"{redis_url}/k",
                     key_bytes=4) as s:
        np.testing.assert_allclose(s.predict(feeds)["label"], m32.in_onnx(feeds)["label"],
                                   atol=1e-6, rtol=0)
    with pytest.raises(UsageError, match="4-byte keys"):
        RedisScorer(m32.dense_onnx, m32.art.graph_config, f"{redis_url}/k", key_bytes=8)

"""Faults on real servers of our own: killed nodes, hung nodes, refused connections.

The scorer either raises the typed ServiceError naming the URL and the table, or (within its
retry budget) recovers with the right numbers; never zeros for keys that exist."""

import os
import signal
import threading

import numpy as np
import pytest

from hugectr2onnx import zoo
from hugectr2onnx.errors import ServiceError
from hugectr2onnx.redis import RedisOptions, RedisScorer, load_tables
from redis_models import build
from redis_services import RedisCluster, RedisServer, free_port


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dcn"), zoo.dcn(**zoo.SMALL["dcn"]), num_keys=2000)


def scorer(model, url, **kw):
    options = RedisOptions(timeout=kw.pop("timeout", 2.0), retry_budget=kw.pop("budget", 0.0))
    return RedisScorer(model.dense_onnx, model.art.graph_config, f"{url}/dcn", options=options,
                       **kw)


def test_refused_connection_names_url(model):
    port = free_port()
    with pytest.raises(ServiceError, match=rf"redis://127.0.0.1:{port}.*ConnectionError"):
        scorer(model, f"redis://127.0.0.1:{port}")


def test_standalone_killed_mid_run(tmp_path, model):
    server = RedisServer(tmp_path)
    load_tables(server.url, "dcn", model.art.graph_config, model.art.sparse_models)
    s = scorer(model, server.url)
    feeds = model.feeds(256, seed=5)
    want = model.in_onnx(feeds)["label"]
    np.testing.assert_allclose(s.predict(feeds)["label"], want, atol=1e-6, rtol=0)
    server.kill()
    with pytest.raises(ServiceError) as e:
        s.predict(feeds)
    assert server.url in str(e.value) and "table sparse_embedding1" in str(e.value)
    assert e.value.exit_code == 5


def test_hung_server_timeout_then_retry_recovers(tmp_path, model):
    """A server that stops answering (SIGSTOP): a timeout error without a budget; with a
    budget the request is retried after it answers again and gives the right numbers."""
    server = RedisServer(tmp_path)
    load_tables(server.url, "dcn", model.art.graph_config, model.art.sparse_models)
    feeds = model.feeds(128, seed=6)
    want = model.in_onnx(feeds)["label"]
    try:
        impatient = scorer(model, server.url, timeout=0.3)
        os.kill(server.proc.pid, signal.SIGSTOP)
        with pytest.raises(ServiceError, match="TimeoutError"):
            impatient.predict(feeds)
        patient = None
        os.kill(server.proc.pid, signal.SIGCONT)
        patient = scorer(model, server.url, timeout=0.3, budget=20.0)
        os.kill(server.proc.pid, signal.SIGSTOP)
        threading.Timer(1.0, os.kill, (server.proc.pid, signal.SIGCONT)).start()
        np.testing.assert_allclose(patient.predict(feeds)["label"], want, atol=1e-6, rtol=0)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.kill()


def test_cluster_node_killed_mid_run(tmp_path, model):
    cluster = RedisCluster(tmp_path)
    try:
        load_tables(cluster.url, "dcn", model.art.graph_config, model.art.sparse_models)
        s = scorer(model, cluster.url, budget=1.0)
        outcomes = []
        for i in range(6):
            feeds = model.feeds(256, seed=10 + i)
            want = model.in_onnx(feeds)["label"]
            if i == 2:
                cluster.nodes[1].kill()
            try:
                got = s.predict(feeds)["label"]
            except ServiceError as e:
                assert cluster.url in str(e) and "sparse_embedding1" in str(e)
                outcomes.append("error")
                continue
            np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)  # never silent zeros
            outcomes.append("ok")
        assert outcomes[:2] == ["ok", "ok"] and "error" in outcomes[2:]
    finally:
        cluster.stop()

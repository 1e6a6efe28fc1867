"""Session-wide Redis services: CI's (scripts/redis-services.sh) or our own processes."""

from __future__ import annotations

import pytest

from redis_services import RedisCluster, RedisServer, shared_url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = shared_url("HUGECTR2ONNX_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory):
    url = shared_url("HUGECTR2ONNX_REDIS_CLUSTER_URL")
    if url:
        yield url
        return
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster.url
    cluster.stop()


@pytest.fixture(params=["standalone", "cluster"])
def any_url(request, redis_url, cluster_url):
    return redis_url if request.param == "standalone" else cluster_url

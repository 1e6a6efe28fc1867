"""AUTH (password, ACL user) and TLS reach Redis; the password never shows."""

import subprocess

import numpy as np
import pytest

from hugectr2onnx import zoo
from hugectr2onnx.cli import main
from hugectr2onnx.errors import ServiceError
from hugectr2onnx.redis import RedisOptions, RedisScorer, load_tables
from hugectr2onnx.redis.store import redact
from redis_models import build
from redis_services import RedisServer

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build(tmp_path_factory.mktemp("gmf"), zoo.gmf(**zoo.SMALL["gmf"]))


def test_redact():
    assert redact(f"redis://alice:{SECRET}@h:1/m") == "redis://alice:***@h:1/m"
    assert redact(f"rediss://:{SECRET}@h:1") == "rediss://:***@h:1"
    assert redact("redis://h:1/m") == "redis://h:1/m"


def test_acl_user_and_password(tmp_path, model, capsys, monkeypatch):
    server = RedisServer(tmp_path, extra=("--user", "default", "off", "--user", "alice", "on",
                                          f">{SECRET}", "~*", "+@all"))
    try:
        url = f"redis://alice:{SECRET}@127.0.0.1:{server.port}"
        load_tables(url, "gmf", model.art.graph_config, model.art.sparse_models)
        feeds = model.feeds(32)
        opts = RedisOptions(username="alice", password=SECRET)
        with RedisScorer(model.dense_onnx, model.art.graph_config, f"{server.url}/gmf",
                         options=opts) as s:
            assert repr(SECRET) not in repr(s.store.options)
            np.testing.assert_allclose(s.predict(feeds)["label"], model.in_onnx(feeds)["label"],
                                       atol=1e-6, rtol=0)
        with pytest.raises(ServiceError) as e:  # wrong password: typed, password hidden
            RedisScorer(model.dense_onnx, model.art.graph_config,
                        f"redis://alice:wrong{SECRET}@127.0.0.1:{server.port}/gmf")
        assert SECRET not in str(e.value) and "alice:***@" in str(e.value)
        # the CLI takes the password from the environment and never prints it
        monkeypatch.setenv("HUGECTR2ONNX_REDIS_PASSWORD", SECRET)
        rc = main(["redis", "load", "--url", server.url, "--user", "alice", "--model", "gmf",
                   "--graph", model.art.graph_config, "--sparse", *model.art.sparse_models,
                   "--replace"])
        out = capsys.readouterr()
        assert rc == 0, out.err
        assert SECRET not in out.out + out.err and "MB/s" in out.out
        monkeypatch.setenv("HUGECTR2ONNX_REDIS_PASSWORD", "wrong")
        rc = main(["redis", "load", "--url", f"redis://alice:{SECRET}x@127.0.0.1:{server.port}",
                   "--model", "gmf", "--graph", model.art.graph_config,
                   "--sparse", *model.art.sparse_models])
        out = capsys.readouterr()
        assert rc == 5 and SECRET not in out.out + out.err and "***" in out.err
    finally:
        server.stop()


def make_certs(d):
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
        str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(d / "ext"),
        "-out", str(d / "server.crt"))


def test_tls(tmp_path, model):
    make_certs(tmp_path)
    server = RedisServer(tmp_path, tls=True, extra=(
        "--tls-cert-file", str(tmp_path / "server.crt"), "--tls-key-file",
        str(tmp_path / "server.key"), "--tls-ca-cert-file", str(tmp_path / "ca.crt"),
        "--tls-auth-clients", "no"))
    try:
        url = f"rediss://127.0.0.1:{server.port}"
        opts = RedisOptions(ca_certificate=str(tmp_path / "ca.crt"))
        load_tables(url, "gmf", model.art.graph_config, model.art.sparse_models, options=opts)
        feeds = model.feeds(16)
        with RedisScorer(model.dense_onnx, model.art.graph_config, f"{url}/gmf",
                         options=opts) as s:
            np.testing.assert_allclose(s.predict(feeds)["label"], model.in_onnx(feeds)["label"],
                                       atol=1e-6, rtol=0)
        with pytest.raises(ServiceError):  # plain TCP to a TLS port fails, typed
            RedisScorer(model.dense_onnx, model.art.graph_config,
                        f"redis://127.0.0.1:{server.port}/gmf",
                        options=RedisOptions(connect_timeout=1, timeout=1))
    finally:
        server.stop()

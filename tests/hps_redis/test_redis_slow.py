"""A slow Redis (a real server that another connection keeps pausing with CLIENT PAUSE):
``predict`` keeps its memory bounded (the reader stays at most PREFETCH batches ahead of a
scorer that waits on Redis, nothing queues up) and returns the in-ONNX numbers, or the typed
ServiceError when a reply takes longer than the timeout. Never zeros."""

import gc
import threading
import time
import tracemalloc

import numpy as np
import pytest
import redis

from hugectr2onnx import zoo
from hugectr2onnx.data import DataLayout
from hugectr2onnx.data.writers import write_parquet
from hugectr2onnx.errors import ServiceError
from hugectr2onnx.predict import PREFETCH, predict
from hugectr2onnx.redis import RedisOptions, RedisScorer, load_tables
from redis_models import build
from redis_services import RedisServer

BATCH = 512
BATCHES = 40


class Pauser:
    """Pauses every client of the server for ``pause_ms`` out of each ``period`` seconds."""

    def __init__(self, url: str, pause_ms: int, period: float):
        self.client = redis.Redis.from_url(url)
        self.pause_ms, self.period = pause_ms, period
        self.pauses = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.client.execute_command("CLIENT", "PAUSE", self.pause_ms, "ALL")
            self.pauses += 1
            self.stop.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.client.execute_command("CLIENT", "UNPAUSE")
        self.client.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("slow")
    m = build(d, zoo.dcn(slots=26, dense_dim=13, vec=4, hidden=(8, 8), cross_layers=2),
              num_keys=2000)
    layout = DataLayout.from_onnx(m.full_onnx)
    n = BATCH * BATCHES
    feeds = m.feeds(n, seed=9)
    labels = np.random.default_rng(1).integers(0, 2, (n, 1)).astype(np.float32)
    keys = [feeds[s.name] for s in layout.sparse]
    file_list = write_parquet(d / "pq", layout, labels, feeds[layout.dense_name], keys,
                              files=2, row_group_size=4096)
    want = predict(m.full_onnx, str(file_list), "parquet", batch_size=BATCH).outputs["label"]
    server = RedisServer(d)
    load_tables(server.url, "dcn", m.art.graph_config, m.art.sparse_models)
    batch_bytes = BATCH * (26 * 8 + 13 * 4 + 4)  # keys, dense and label of one decoded batch
    yield m, file_list, server, want, batch_bytes
    server.stop()


def scored(m, file_list, url, timeout=5.0):
    """predict with Redis embeddings: (outputs, traced peak bytes, seconds)."""
    with RedisScorer(m.dense_onnx, m.art.graph_config, f"{url}/dcn",
                     options=RedisOptions(timeout=timeout)) as s:
        gc.collect()
        tracemalloc.start()
        try:
            t = time.perf_counter()
            r = predict(m.dense_onnx, str(file_list), "parquet", batch_size=BATCH, scorer=s,
                        layout=s.layout(), progress=False)
            seconds = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return r.outputs["label"], peak, seconds


def test_slow_redis_keeps_memory_bounded_and_numbers_right(setup):
    m, file_list, server, want, batch_bytes = setup
    fast, fast_peak, fast_s = scored(m, file_list, server.url)
    np.testing.assert_allclose(fast, want, atol=1e-6, rtol=0)
    with Pauser(server.url, pause_ms=40, period=0.05) as pauser:
        slow, slow_peak, slow_s = scored(m, file_list, server.url)
    assert pauser.pauses >= 10 and slow_s > fast_s  # Redis really was slow
    np.testing.assert_allclose(slow, want, atol=1e-6, rtol=0)  # never zeros
    # a reader running ahead of the stalled scorer would hold up to the whole dataset
    total = BATCHES * batch_bytes
    assert total > fast_peak + 10 * batch_bytes
    assert slow_peak < fast_peak + (PREFETCH + 2) * batch_bytes, (slow_peak, fast_peak)


def test_redis_slower_than_timeout_is_a_typed_error_and_the_reader_stops(setup):
    m, file_list, server, _, _ = setup
    with Pauser(server.url, pause_ms=3000, period=2.5):
        with pytest.raises(ServiceError, match="TimeoutError") as e:
            scored(m, file_list, server.url, timeout=0.3)
        assert server.url in str(e.value) and e.value.exit_code == 5
    del e
    gc.collect()
    deadline = time.monotonic() + 6
    while any(t.name == "hugectr2onnx-reader" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the prefetch thread outlived the failed predict"
        time.sleep(0.05)

"""Models for the Redis tests: HugeCTR artifacts, an in-ONNX and a dense-only conversion,
and an independent HPS-layout writer (redis-py HSET, partitions by the hand-written mixer)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import redis
from redis.cluster import RedisCluster

from hugectr2onnx import converter, zoo
from hugectr2onnx.loader import load_model
from hugectr2onnx.verify import random_feeds

MASK = (1 << 64) - 1


def mixer_by_hand(key: int) -> int:
    """database_backend_detail.hpp, with Python integers (no numpy): the key converted to
    uint64_t, then rotr-xor, multiply, rotr-xor, multiply, xorshift 28."""
    x = key & MASK

    def rotr(v, n):
        return ((v >> n) | (v << (64 - n))) & MASK

    x ^= rotr(x, 25) ^ rotr(x, 50)
    x = (x * 0xA24BAED4963EE407) & MASK
    x ^= rotr(x, 24) ^ rotr(x, 49)
    x = (x * 0x9FB21C651E98DF25) & MASK
    return x ^ (x >> 28)


@dataclass
class Model:
    art: object
    graph: object
    full_onnx: str
    dense_onnx: str

    def feeds(self, batch: int, seed: int = 0) -> dict:
        return random_feeds(self.graph, batch, convert_embedding=True, seed=seed)

    def in_onnx(self, feeds: dict) -> dict:
        sess = ort.InferenceSession(self.full_onnx, providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        outs = sess.run(None, {k: v for k, v in feeds.items() if k in names})
        return dict(zip([o.name for o in sess.get_outputs()], outs))


def build(directory, builder, *, num_keys: int = 300, hashed: bool = True, seed: int = 0,
          key_bits: int = 64):
    art = zoo.save(builder, directory, num_keys=num_keys, hashed=hashed, seed=seed,
                   key_bits=key_bits)
    full, dense = str(directory / "full.onnx"), str(directory / "dense.onnx")
    converter.convert(full, art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file)
    converter.convert(dense, art.graph_config, art.dense_model, False, None, art.ntp_file)
    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    return Model(art, graph, full, dense)


def client(url: str):
    probe = redis.Redis.from_url(url)
    if probe.info("cluster").get("cluster_enabled"):
        probe.close()
        return RedisCluster.from_url(url)
    return probe


def write_hps_tables(url: str, model: str, graph, *, names=None, partitions: int = 16,
                     key_bytes: int = 8) -> None:
    """HPS's layout written key by key, independently of hugectr2onnx.redis."""
    r = client(url)
    for emb, name in zip(graph.embeddings, names or [e.top for e in graph.embeddings]):
        tag = f"hps_et.{model}.{name}"
        per_part: dict[int, dict] = {}
        for key, vec in zip(emb.table.keys.tolist(), np.asarray(emb.table.vectors)):
            field = int(key).to_bytes(key_bytes, "little", signed=key_bytes == 8)
            part = mixer_by_hand(int(key)) % partitions
            per_part.setdefault(part, {})[field] = vec.astype("<f4").tobytes()
        for part, mapping in per_part.items():
            r.hset(f"hps_et{{{tag}/p{part}}}v", mapping=mapping)
    r.close()


def flush(url: str) -> None:
    r = client(url)
    if isinstance(r, RedisCluster):
        r.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        r.flushall()
    r.close()

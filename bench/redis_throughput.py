"""Embeddings in Redis (HPS layout): bulk load, scoring against the in-ONNX lookup, Ray.

Starts its own redis-server on a free loopback port (or uses --url) and prints medians and
ratios measured in the same run:

* bulk load: MB/s of key+vector payload into Redis (target >= 100 MB/s);
* scoring, batch 4096: samples/s of the dense-only model + Redis lookups (cache off) against
  the in-ONNX lookup on the same model (target >= 0.25x); then the LRU cache on, with keys
  drawn from a Zipf distribution (and the in-ONNX model on the same keys);
* Ray: ``predict --engine ray`` on a local 2-CPU Ray against the local ``predict`` on the
  same Parquet dataset (target >= 0.8x); Ray's start-up is reported apart.

    python3 bench/redis_throughput.py                  # all three
    python3 bench/redis_throughput.py --skip-ray --keys 2000000
    python3 bench/redis_throughput.py --skip-scoring --skip-ray --load-chunk-mb 16 32
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from hugectr2onnx import converter, zoo
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model
from hugectr2onnx.redis import RedisScorer, load_tables


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found (scripts/redis-services.sh start installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"redis://127.0.0.1:{port}"
        time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def free_port_pair() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


def start_cluster(directory: Path, n: int = 3) -> tuple[list, str]:
    """``n`` local cluster nodes, no replicas; on failure the nodes are stopped."""
    procs, ports = [], []
    try:
        for i in range(n):
            d = directory / f"node{i}"
            d.mkdir(parents=True)
            port = free_port_pair()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(d), "--cluster-enabled", "yes"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True,
                       capture_output=True)
        for p in ports:
            while "cluster_state:ok" not in subprocess.run(
                    ["redis-cli", "-p", str(p), "cluster", "info"], capture_output=True,
                    text=True).stdout:
                time.sleep(0.1)
    except BaseException:
        for proc in procs:
            proc.terminate()
            proc.wait()
        raise
    return procs, f"redis://127.0.0.1:{ports[0]}"


def server_cpu(url: str) -> float:
    """CPU seconds redis-server has used (all nodes of a cluster)."""
    import redis
    from redis.cluster import RedisCluster

    r = redis.Redis.from_url(url)
    if r.info("cluster").get("cluster_enabled"):
        infos = RedisCluster.from_url(url).info("cpu", target_nodes=RedisCluster.PRIMARIES)
        infos = list(infos.values())
    else:
        infos = [r.info("cpu")]
    return sum(i["used_cpu_user"] + i["used_cpu_sys"] for i in infos)


def flush(url: str) -> None:
    import redis
    from redis.cluster import RedisCluster

    r = redis.Redis.from_url(url)
    if r.info("cluster").get("cluster_enabled"):
        RedisCluster.from_url(url).flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        r.flushall()


def bench_load(url: str, work: Path, keys: int, vec: int, repeats: int, what: str,
               chunk_mbs=(16,)) -> None:
    b = ModelBuilder().input(dense_dim=1, sparse=[{"top": "data", "slot_num": 1}])
    b.embedding(bottom="data", top="emb", vec_size=vec)
    b.dense("Reshape", "emb", "r", leading_dim=vec)
    b.dense("InnerProduct", "r", "fc", fc_param={"num_output": 1})
    b.dense("BinaryCrossEntropyLoss", ["fc", "label"], "loss")
    rng = np.random.default_rng(0)
    table = {"keys": rng.permutation(np.arange(keys, dtype=np.int64) * 7919),
             "vectors": rng.standard_normal((keys, vec)).astype(np.float32)}
    art = save_model(b, work / f"load{vec}", tables=[table])
    rates, server, client = {}, {}, {}
    for _ in range(repeats):  # chunk sizes interleaved
        for mb in chunk_mbs:
            flush(url)
            cpu0, own0 = server_cpu(url), time.process_time()
            r = load_tables(url, "bench", art.graph_config, art.sparse_models, progress=False,
                            chunk_bytes=int(mb * 2 ** 20))
            client.setdefault(mb, []).append(time.process_time() - own0)
            server.setdefault(mb, []).append(server_cpu(url) - cpu0)
            rates.setdefault(mb, []).append(r.mb_per_s)
    size = r.payload_bytes / 1e6
    for mb in chunk_mbs:
        srv = statistics.median(server[mb])
        print(f"bulk load into {what}: {keys:,} keys x {vec} floats = {size:.0f} MB, 16 "
              f"partitions, --chunk-mb {mb}: median {statistics.median(rates[mb]):.1f} MB/s "
              f"(runs: {', '.join(f'{x:.1f}' for x in rates[mb])}); target >= 100 MB/s; "
              f"redis-server CPU {srv:.2f} s = {size / srv:.0f} MB per server CPU-second (the "
              f"bound when the server has a core to itself); client CPU "
              f"{statistics.median(client[mb]):.2f} s")
    flush(url)


def zipf_keys(known: np.ndarray, shape, rng, a: float = 1.2) -> np.ndarray:
    ranks = np.minimum(rng.zipf(a, size=shape) - 1, known.size - 1)
    return known[ranks]


def samples_per_s(fn, feeds_list, repeats: int) -> float:
    fn(feeds_list[0])  # warm-up
    times = []
    for _ in range(repeats):
        for feeds in feeds_list:
            t = time.perf_counter()
            fn(feeds)
            times.append(time.perf_counter() - t)
    batch = next(iter(feeds_list[0].values())).shape[0]
    return batch / statistics.median(times)


def bench_scoring(url: str, work: Path, keys: int, batch: int, repeats: int, threads: int,
                  cache_keys: int) -> None:
    builder = zoo.dcn()  # Criteo shape: 26 slots x 16 floats, 13 dense, 2x1024 MLP, 6 crosses
    art = zoo.save(builder, work / "dcn", num_keys=keys, hashed=True)
    full, dense = str(work / "full.onnx"), str(work / "dense.onnx")
    converter.convert(full, art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, progress=False)
    converter.convert(dense, art.graph_config, art.dense_model, False, None, art.ntp_file)
    flush(url)
    load_tables(url, "dcn", art.graph_config, art.sparse_models, progress=False)
    from hugectr2onnx.loader import load_model

    graph = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
    known = np.asarray(graph.embeddings[0].table.keys)
    rng = np.random.default_rng(1)
    shape = (batch, 26, 1)

    def feeds(kind):
        k = known[rng.integers(0, known.size, shape)] if kind == "uniform" else \
            zipf_keys(known, shape, rng)
        return {"dense": rng.standard_normal((batch, 13)).astype(np.float32), "data1": k}

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(full, opts, providers=["CPUExecutionProvider"])

    def in_onnx(f):
        return sess.run(None, f)

    print(f"scoring DCN (26 slots x 16, 2x1024 MLP), {keys:,} keys, batch {batch}, "
          f"{threads or 'all'} ORT threads:")
    for kind, cache in (("uniform", 0), ("zipf", 0), ("zipf", cache_keys)):
        batches = [feeds(kind) for _ in range(8)]
        base = samples_per_s(in_onnx, batches, repeats)
        with RedisScorer(dense, art.graph_config, f"{url}/dcn", cache_keys=cache,
                         threads=threads) as s:
            got = samples_per_s(s.predict, batches, repeats)
            hit = (f", cache hit rate {s.tables.caches[0].hits / s.tables.caches[0].lookups:.0%}"
                   if cache else "")
        label = f"{kind} keys, cache {'off' if not cache else f'{cache:,} keys'}"
        target = "; target >= 0.25x" if kind == "uniform" and not cache else ""
        print(f"  {label}: in-ONNX {base:,.0f} samples/s, Redis {got:,.0f} samples/s, ratio "
              f"{got / base:.2f}x{hit}{target}")
    bench_lookup_stage(url, art.graph_config, dense, lambda: feeds("zipf"), repeats, threads,
                       cache_keys)
    flush(url)


def bench_lookup_stage(url, graph_config, dense, draw, repeats, threads, cache_keys) -> None:
    """The lookup stage alone (np.unique, cache, HMGETs, pooling; no MLP), cache off and on,
    on the same Zipf batches. The cache is warmed on other batches first, and every measured
    batch is new to it (a cache that has seen the very batches it is timed on flatters)."""
    warm = [draw() for _ in range(8)]
    fresh = [draw() for _ in range(8 * repeats)]
    rates, rows = {}, []
    for _ in range(repeats):  # off and on interleaved; median over rounds
        for cache in (0, cache_keys):
            with RedisScorer(dense, graph_config, f"{url}/dcn", cache_keys=cache,
                             threads=threads) as s:
                in_redis = [0.0]
                exchange = s.store.exchange

                def timed(*a, _exchange=exchange, _acc=in_redis, **k):
                    t = time.perf_counter()
                    try:
                        return _exchange(*a, **k)
                    finally:
                        _acc[0] += time.perf_counter() - t

                s.store.exchange = timed  # the round trips' share of the stage
                for f in warm:
                    s.embed(f)
                st = s.tables.stats[0]
                keys0, fetched0 = st.distinct, st.fetched
                in_redis[0] = 0.0
                times = []
                for f in fresh:
                    t = time.perf_counter()
                    s.embed(f)
                    times.append(time.perf_counter() - t)
                batch = next(iter(fresh[0].values())).shape[0]
                rates.setdefault(cache, []).append(batch / statistics.median(times))
                rows.append((cache, (st.distinct - keys0) / len(fresh),
                             (st.fetched - fetched0) / len(fresh),
                             in_redis[0] / len(fresh) * 1e3, sum(times) / len(fresh) * 1e3))
    off, on = statistics.median(rates[0]), statistics.median(rates[cache_keys])
    per = {c: r for c, *r in rows}
    print(f"  lookup stage alone, zipf keys (a = 1.2), {len(fresh)} batches new to the cache: "
          f"cache off {off:,.0f} samples/s (runs {', '.join(f'{x:,.0f}' for x in rates[0])}), "
          f"LRU {cache_keys:,} keys {on:,.0f} samples/s (runs "
          f"{', '.join(f'{x:,.0f}' for x in rates[cache_keys])}), ratio {on / off:.2f}x; "
          f"distinct keys per batch {per[0][0]:,.0f}, fetched from Redis per batch: "
          f"{per[0][1]:,.0f} off, {per[cache_keys][1]:,.0f} on; ms per batch in Redis "
          f"round trips / whole stage: {per[0][2]:.1f} / {per[0][3]:.1f} off, "
          f"{per[cache_keys][2]:.1f} / {per[cache_keys][3]:.1f} on")


def bench_ray(work: Path, rows: int, batch: int, repeats: int) -> None:
    import ray

    from hugectr2onnx.data import DataLayout
    from hugectr2onnx.data.writers import write_parquet
    from hugectr2onnx.predict import predict
    from hugectr2onnx.ray_predict import predict_ray

    art = zoo.save(zoo.dcn(), work / "ray", num_keys=100_000, hashed=True)
    full = str(work / "ray.onnx")
    converter.convert(full, art.graph_config, art.dense_model, True, art.sparse_models,
                      art.ntp_file, progress=False)
    layout = DataLayout.from_onnx(full)
    rng = np.random.default_rng(2)
    from hugectr2onnx.loader import load_model

    known = np.asarray(load_model(art.graph_config, art.dense_model, art.sparse_models)
                       .embeddings[0].table.keys)
    keys = known[rng.integers(0, known.size, (rows, 26, 1))]
    file_list = write_parquet(work / "pq", layout, rng.integers(0, 2, (rows, 1)),
                              rng.standard_normal((rows, 13)), [keys], files=4,
                              row_group_size=16384)
    local = []
    for _ in range(repeats):
        r = predict(full, str(file_list), "parquet", batch_size=batch, progress=False)
        local.append(r.samples_per_s)
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t
    distributed = []
    for _ in range(repeats):
        rr = predict_ray(full, str(file_list), batch_size=batch)
        distributed.append(rr.samples_per_s)
    ray.shutdown()
    same = np.array_equal(rr.outputs["label"], r.outputs["label"])
    lm, dm = statistics.median(local), statistics.median(distributed)
    print(f"Ray Data, {rows:,} Parquet rows (4 files), batch {batch}, 2 CPUs: local predict "
          f"{lm:,.0f} samples/s, Ray {dm:,.0f} samples/s (actors started per run), ratio "
          f"{dm / lm:.2f}x; target >= 0.8x; ray.init {init_s:.1f} s apart; identical "
          f"outputs: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=None, help="an existing Redis (default: start one)")
    ap.add_argument("--load-keys", type=int, default=2_000_000)
    ap.add_argument("--load-vec", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--load-chunk-mb", type=float, nargs="+", default=[32],
                    help="chunk sizes to compare (interleaved runs)")
    ap.add_argument("--load-cluster", action=argparse.BooleanOptionalAction, default=True,
                    help="also load into a local 3-node cluster")
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys of the scoring table")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0, help="ORT threads (0: all)")
    ap.add_argument("--cache-keys", type=int, default=65536)
    ap.add_argument("--ray-rows", type=int, default=400_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-scoring", action="store_true")
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}")
    work = Path(tempfile.mkdtemp(prefix="redis-bench-"))
    proc = None
    try:
        url = args.url
        if url is None:
            proc, url = start_redis(work)
        if not args.skip_load:
            for vec in args.load_vec:
                keys = args.load_keys * 32 // vec  # the same payload for each width
                bench_load(url, work, keys, vec, args.repeats, "a standalone server",
                           args.load_chunk_mb)
            if args.load_cluster:
                cluster, curl = start_cluster(work / "cluster")
                try:
                    for vec in args.load_vec:
                        bench_load(curl, work, args.load_keys * 32 // vec, vec, args.repeats,
                                   "a 3-node cluster", args.load_chunk_mb)
                finally:
                    for p in cluster:
                        p.terminate()
                        p.wait()
        if not args.skip_scoring:
            bench_scoring(url, work, args.keys, args.batch, args.repeats, args.threads,
                          args.cache_keys)
        if not args.skip_ray:
            bench_ray(work, args.ray_rows, args.batch, args.repeats)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

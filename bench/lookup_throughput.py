"""Throughput of the full embedding lookup per key->row strategy, on ONNX Runtime CPU.

keys [batch, slots, 1] int64 -> rows -> Gather of a [K+1, vec] float32 table, compared with a
plain Gather on row ids mapped beforehand (the baseline). Prints medians (ms per batch and
lookups/s), the ratio to the baseline, build time, session load time and RSS.

    python3 bench/lookup_throughput.py                    # 1M and 50M keys
    python3 bench/lookup_throughput.py --keys 1000000 --vec 64
"""

from __future__ import annotations

import argparse
import gc
import platform
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from hugectr2onnx.onnx_backend.emitter import OnnxEmitter
from hugectr2onnx.onnx_backend.lookup import build_index

BIG = 1 << 20  # initializers above this many bytes go to ORT by pointer, not in the proto


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _external(name: str, arr: np.ndarray) -> onnx.TensorProto:
    """An initializer whose data ORT takes from an OrtValue (add_external_initializers)."""
    t = onnx.TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(arr.dtype),
                         dims=arr.shape, data_location=onnx.TensorProto.EXTERNAL)
    for key, value in (("location", f"{name}.bin"), ("offset", "0"), ("length", str(arr.nbytes))):
        t.external_data.add(key=key, value=value)
    return t


def session(g: OnnxEmitter, keys_in: str, out: str, batch: int, slots: int, threads: int):
    """An ORT session; large arrays are handed over by pointer (no copy, no 2 GB limit)."""
    inits, big = [], {}
    for name, arr in g.initializers.items():
        arr = np.asarray(arr)  # (ascontiguousarray would turn scalars into [1])
        if arr.nbytes > BIG:
            big[name] = arr = np.ascontiguousarray(arr)
            inits.append(_external(name, arr))
        else:
            inits.append(numpy_helper.from_array(arr, name))
    inputs = [helper.make_tensor_value_info(keys_in, TensorProto.INT64, [batch, slots, 1])]
    graph = helper.make_graph(g.nodes, "lookup", inputs,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    opsets = [helper.make_opsetid("", g.opset)]
    if g.ml_opset:
        opsets.append(helper.make_opsetid("ai.onnx.ml", g.ml_opset))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in big.values()]
    if big:
        opts.add_external_initializers(list(big), values)
    start = time.perf_counter()
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess, time.perf_counter() - start, values


def time_pair(base, base_feeds, sess, feeds, repeats: int):
    """Medians of both; alternating the sessions makes load from other processes hit both
    alike (the "Gather ms" column is the baseline measured beside each strategy)."""
    base.run(None, base_feeds)
    sess.run(None, feeds)
    t = np.empty((repeats, 2))
    for i in range(repeats):
        for j, (s, f) in enumerate(((base, base_feeds), (sess, feeds))):
            start = time.perf_counter()
            s.run(None, f)
            t[i, j] = time.perf_counter() - start
    return np.median(t[:, 0]), np.median(t[:, 1])


def expected_rows(keys, q):
    """Rows 1..K in key order for the queries, from a sorted search (independent of the
    strategies)."""
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], q), 0, keys.size - 1)
    return np.where(keys[order][pos] == q, order[pos] + 1, 0)


def bench(k: int, vec: int, strategies, batch: int, slots: int, repeats: int, threads: int,
          miss: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, int(k * 1.01),
                                  dtype=np.int64, endpoint=True))[:k]
    rng.shuffle(keys)
    k = keys.size
    table = np.empty((k + 1, vec), dtype=np.float32)
    table[0] = 0
    for c in range(1, k + 1, 1 << 22):  # filled in chunks to keep temporaries small
        table[c:c + (1 << 22)] = rng.standard_normal((min(1 << 22, k + 1 - c), vec),
                                                     dtype=np.float32)
    pick = rng.integers(0, k, size=(batch, slots, 1))
    q = keys[pick]
    unseen = rng.random(q.shape) < miss
    q[unseen] = rng.integers(-2 ** 62, 2 ** 62, size=int(unseen.sum()))
    rows = expected_rows(keys, q)
    # direct only suits compact ranges: it runs on sequential keys 0..K-1 (same rows)
    seq_q = np.where(rows > 0, rows - 1, k + 7)
    n_lookups = batch * slots
    print(f"\n== {k:,} keys, vec {vec}: table {table.nbytes / 2 ** 30:.2f} GiB, batch "
          f"[{batch}, {slots}, 1], {miss:.0%} unseen keys, {threads} threads ==")
    print(f"{'strategy':<15}{'build s':>9}{'load s':>8}{'index MB':>10}{'median ms':>11}"
          f"{'Mlookups/s':>12}{'Gather ms':>11}{'vs Gather':>11}{'RSS MB':>9}")

    g = OnnxEmitter()
    t_name = g.add_initializer("table", table)
    g.node("Gather", [t_name, "rows"], "vectors", axis=0)
    base_sess, load, _ = session(g, "rows", "vectors", batch, slots, threads)
    base_feeds = {"rows": rows}
    base, _ = time_pair(base_sess, base_feeds, base_sess, base_feeds, repeats)
    print(f"{'plain Gather':<15}{'-':>9}{load:>8.2f}{'-':>10}{base * 1e3:>11.2f}"
          f"{n_lookups / base / 1e6:>12.1f}{base * 1e3:>11.2f}{1.0:>11.2f}{rss_mb():>9.0f}")
    expected = table[rows]
    for strategy in strategies:
        kset, feed = (np.arange(k, dtype=np.int64), seq_q) if strategy == "direct" else (keys, q)
        t = time.perf_counter()
        index = build_index(kset, strategy=strategy)
        built = time.perf_counter() - t
        g = OnnxEmitter()
        g.reserve("keys")
        r = index.emit(g, "keys", "emb")
        t_name = g.add_initializer("table", table)
        g.node("Gather", [t_name, r], "vectors", axis=0)
        sess, load, _ = session(g, "keys", "vectors", batch, slots, threads)
        got = sess.run(None, {"keys": feed})[0]
        assert np.array_equal(got, expected), f"{strategy}: wrong vectors"
        assert np.array_equal(index.rows(feed), rows), f"{strategy}: numpy mirror differs"
        base, ms = time_pair(base_sess, base_feeds, sess, {"keys": feed}, repeats)
        label = {"auto": f"auto({index.name})", "direct": "direct(seq)"}.get(strategy, strategy)
        print(f"{label:<15}{built:>9.2f}{load:>8.2f}{index.nbytes / 2 ** 20:>10.0f}"
              f"{ms * 1e3:>11.2f}{n_lookups / ms / 1e6:>12.1f}{base * 1e3:>11.2f}{base / ms:>11.2f}"
              f"{rss_mb():>9.0f}")
        del sess, index, g
        gc.collect()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 50_000_000])
    p.add_argument("--vec", type=int, default=64, help="embedding width (default 64)")
    p.add_argument("--big-vec", type=int, default=16,
                   help="width used for tables above 10M keys, to fit memory (default 16)")
    p.add_argument("--strategies", nargs="+", default=["hash", "label_encoder", "auto", "direct"],
                   help="direct runs on sequential keys 0..K-1 (hashed keys are not compact)")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--slots", type=int, default=26)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--miss", type=float, default=0.05, help="fraction of unseen query keys")
    a = p.parse_args()
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}, "
          f"{platform.machine()}, {a.threads} intra-op threads")
    for k in a.keys:
        vec = a.vec if k <= 10_000_000 else a.big_vec
        if vec != a.vec:
            print(f"(vec {vec} instead of {a.vec} for {k:,} keys: a {k:,} x {a.vec} table "
                  f"would need {k * a.vec * 4 / 2 ** 30:.1f} GiB)")
        bench(k, vec, a.strategies, a.batch, a.slots, a.repeats, a.threads, a.miss)


if __name__ == "__main__":
    main()

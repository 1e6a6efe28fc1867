"""Throughput of the full embedding lookup per key->row strategy, on ONNX Runtime CPU.

keys [batch, slots, 1] int64 -> rows -> the converter's row gather (GatherND up to 64 floats
per row, Gather above) of a [K+1, vec]
float32 table, compared with a plain Gather on row ids mapped beforehand (the baseline; a
plain GatherND on the same ids is shown too). Prints medians (ms per batch and
lookups/s), the ratio to the baseline, index build time and peak build memory, session load
time and RSS. Large tensors are external data files (as a converted model ships them), which
ONNX Runtime memory-maps, so the sessions share the table.

    python3 bench/lookup_throughput.py                    # 1M and 50M keys
    python3 bench/lookup_throughput.py --keys 1000000 --threads 1
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import tempfile
import time
import tracemalloc

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from hugectr2onnx.onnx_backend.embedding import EmbeddingOptions, emit_lookup, gather_rows
from hugectr2onnx.onnx_backend.emitter import OnnxEmitter
from hugectr2onnx.onnx_backend.external import ZeroRowTable

BIG = 1 << 20  # initializers above this many bytes become external data files


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _external(name: str, arr: np.ndarray, workdir: str, file: str) -> onnx.TensorProto:
    """An initializer stored in its own file under ``workdir`` (written once per file)."""
    if not os.path.exists(os.path.join(workdir, file)):
        arr.tofile(os.path.join(workdir, file))
    t = onnx.TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(arr.dtype),
                         dims=arr.shape, data_location=onnx.TensorProto.EXTERNAL)
    for key, value in (("location", file), ("offset", "0"), ("length", str(arr.nbytes))):
        t.external_data.add(key=key, value=value)
    return t


def session(g: OnnxEmitter, keys_in: str, out: str, shape, threads: int, workdir: str, tag: str,
            shared=None):
    """``shared``: an array already written as table.bin (the sessions map one file)."""
    inits = []
    for name, arr in g.initializers.items():
        file = "table.bin" if shared is not None and arr is shared else \
            f"{tag}__{name}".replace("/", "_").replace(".", "_") + ".bin"
        arr = np.asarray(arr)  # (not ascontiguousarray: it turns scalars into [1])
        if arr.nbytes > BIG:
            inits.append(_external(name, np.ascontiguousarray(arr), workdir, file))
        else:
            inits.append(numpy_helper.from_array(arr, name))
    inputs = [helper.make_tensor_value_info(keys_in, TensorProto.INT64, shape)]
    graph = helper.make_graph(g.nodes, "lookup", inputs,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    opsets = [helper.make_opsetid("", g.opset)]
    if g.ml_opset:
        opsets.append(helper.make_opsetid("ai.onnx.ml", g.ml_opset))
    path = os.path.join(workdir, f"{tag}.onnx")
    onnx.save_model(helper.make_model(graph, opset_imports=opsets, ir_version=10), path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # idle pool threads must not spin: the bench alternates two sessions on few cores
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    start = time.perf_counter()
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sess, time.perf_counter() - start


def time_pair(base, base_feeds: list, sess, feeds: list, repeats: int):
    """Medians of both and the ratio of their best runs; alternating the sessions makes load
    from other processes hit both alike (the "Gather ms" column is the baseline measured
    beside each strategy). Each run takes the next of several batches, and the two sessions
    run different batches in turn, so neither finds the rows the previous run left in the
    CPU caches (the same batch over and over would time the L3 cache, not memory)."""
    n = len(feeds)
    base.run(None, base_feeds[0])
    sess.run(None, feeds[0])
    t = np.empty((repeats, 2))
    for i in range(repeats):
        for j, (s, f) in enumerate(((base, base_feeds[i % n]), (sess, feeds[(i + n // 2) % n]))):
            start = time.perf_counter()
            s.run(None, f)
            t[i, j] = time.perf_counter() - start
    return np.median(t[:, 0]), np.median(t[:, 1]), t[:, 0].min() / t[:, 1].min()


def expected_rows(keys, q):
    """Rows 1..K in key order for the queries, from a sorted search (independent of the
    strategies)."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, q), 0, keys.size - 1)
    return np.where(sorted_keys[pos] == q, order[pos] + 1, 0)


def random_table(k: int, vec: int, rng) -> np.ndarray:
    table = np.empty((k + 1, vec), dtype=np.float32)
    table[0] = 0
    for c in range(1, k + 1, 1 << 22):  # in chunks to keep temporaries small
        table[c:c + (1 << 22)] = rng.standard_normal((min(1 << 22, k + 1 - c), vec),
                                                     dtype=np.float32)
    return table


def bench(k: int, vec: int, strategies, batch: int, slots: int, repeats: int, threads: int,
          miss: float, workdir: str, batches: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, int(k * 1.01),
                                  dtype=np.int64, endpoint=True))[:k]
    rng.shuffle(keys)
    k = keys.size
    pick = rng.integers(0, k, size=(batches, batch, slots, 1))
    q = keys[pick]
    unseen = rng.random(q.shape) < miss
    q[unseen] = rng.integers(-2 ** 62, 2 ** 62, size=int(unseen.sum()))
    rows = expected_rows(keys, q)
    # direct only suits compact ranges: it runs on sequential keys 0..K-1 (same rows)
    seq_q = np.where(rows > 0, rows - 1, k + 7)
    table = random_table(k, vec, rng)
    expected = table[rows[0]]  # checked on the first batch
    shape = [batch, slots, 1]
    n_lookups = batch * slots
    print(f"\n== {k:,} keys, vec {vec}: table {table.nbytes / 2 ** 30:.2f} GiB, {batches} "
          f"batches [{batch}, {slots}, 1] in turn, {miss:.0%} unseen keys, {threads} intra-op "
          "threads ==")
    print(f"{'strategy':<26}{'build s':>8}{'build MB':>9}{'index MB':>9}{'load s':>7}"
          f"{'median ms':>10}{'Mlookups/s':>11}{'Gather ms':>10}{'vs Gather':>10}{'(best)':>7}"
          f"{'RSS MB':>8}")

    g = OnnxEmitter()
    g.node("Gather", [g.add_initializer("table", table), "rows"], "vectors", axis=0)
    base_sess, load = session(g, "rows", "vectors", shape, threads, workdir, "base", table)
    del table, g  # the sessions map the table file
    gc.collect()
    base_feeds = [{"rows": r} for r in rows]
    base, _, _ = time_pair(base_sess, base_feeds, base_sess, base_feeds, repeats)
    print(f"{'plain Gather':<26}{'-':>8}{'-':>9}{'-':>9}{load:>7.2f}{base * 1e3:>10.2f}"
          f"{n_lookups / base / 1e6:>11.1f}{base * 1e3:>10.2f}{1.0:>10.2f}{1.0:>7.2f}"
          f"{rss_mb():>8.0f}")
    table_ref = np.memmap(os.path.join(workdir, "table.bin"), dtype=np.float32, mode="r",
                          shape=(k + 1, vec))

    def report(label, built, build_mb, index_mb, sess, load, feed):
        assert np.array_equal(sess.run(None, feed[0])[0], expected), f"{label}: wrong vectors"
        base, ms, best = time_pair(base_sess, base_feeds, sess, feed, repeats)
        print(f"{label:<26}{built:>8}{build_mb:>9}{index_mb:>9}"
              f"{load:>7.2f}{ms * 1e3:>10.2f}{n_lookups / ms / 1e6:>11.1f}{base * 1e3:>10.2f}"
              f"{base / ms:>10.2f}{best:>7.2f}{rss_mb():>8.0f}", flush=True)

    g = OnnxEmitter()
    g.reserve("rows")
    g.node("GatherND", [g.add_initializer("table", table_ref), g.unsqueeze("rows", [-1])],
           "vectors")
    sess, load = session(g, "rows", "vectors", shape, threads, workdir, "plain_nd", table_ref)
    report("plain GatherND", "-", "-", "-", sess, load, base_feeds)
    del sess, g
    for strategy in strategies:
        kset, feed = (np.arange(k, dtype=np.int64), seq_q) if strategy == "direct" else (keys, q)
        name, _, order = strategy.partition(":")
        tracemalloc.start()
        t = time.perf_counter()
        g = OnnxEmitter(21 if name.endswith("_v4") else 17)  # v4: ai.onnx.ml 4 tensors
        g.reserve("keys")
        # the converter's lookup: index, table layout (slot order?) and row gather
        opts = EmbeddingOptions(lookup=name.removesuffix("_v4"), table_order=order or "auto")
        r, index, weights = emit_lookup(g, "keys", kset, table_ref[1:], slots, opts, "emb")
        built = time.perf_counter() - t
        build_mb = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        if isinstance(g.initializers[weights], ZeroRowTable):  # file order: table.bin itself
            g.initializers[weights] = table_ref
        gather_rows(g, weights, r, vec, "emb", "vectors")
        sess, load = session(g, "keys", "vectors", shape, threads, workdir,
                             strategy.replace(":", "_"), table_ref)
        got = index.rows(feed)
        if getattr(index, "slot_order", False):
            got = index.table_rows()[got]
        assert np.array_equal(got, rows), f"{strategy}: numpy mirror differs"
        label = {"auto": f"auto({index.name})", "direct": "direct(seq)"}.get(name, name)
        if index.name == "hash":
            label += ", slot order" if index.slot_order else ", file order"
        report(label, f"{built:.2f}", f"{build_mb:.0f}", f"{index.nbytes / 2 ** 20:.0f}", sess,
               load, [{"keys": f} for f in feed])
        del sess, index, g
        gc.collect()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 50_000_000])
    p.add_argument("--vec", type=int, default=64, help="embedding width (default 64)")
    p.add_argument("--big-vec", type=int, default=16,
                   help="width used for tables above 10M keys, to fit memory (default 16)")
    p.add_argument("--strategies", nargs="+",
                   default=["hash", "hash:file", "label_encoder", "label_encoder_v4", "auto",
                            "direct"],
                   help="direct runs on sequential keys 0..K-1 (hashed keys are not compact); "
                   "label_encoder_v4 is label_encoder emitted at opset 21 (tensor attributes); "
                   "a suffix :file or :slot forces the table order (default: the converter's "
                   "auto)")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--slots", type=int, default=26)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--miss", type=float, default=0.05, help="fraction of unseen query keys")
    p.add_argument("--batches", type=int, default=8,
                   help="distinct batches the runs take in turn (default 8; 1 repeats one "
                   "batch, whose rows then stay in the CPU caches)")
    p.add_argument("--workdir", default=None, help="where the model files go (default: a "
                   "temporary folder, removed at the end)")
    a = p.parse_args()
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} cpus")
    for k in a.keys:
        vec = a.vec if k <= 10_000_000 else a.big_vec
        if vec != a.vec:
            print(f"(vec {vec} instead of {a.vec} for {k:,} keys: a {k:,} x {a.vec} table "
                  f"would need {k * a.vec * 4 / 2 ** 30:.1f} GiB)")
        workdir = a.workdir or tempfile.mkdtemp(prefix="lookup_bench_")
        os.makedirs(workdir, exist_ok=True)
        try:
            bench(k, vec, a.strategies, a.batch, a.slots, a.repeats, a.threads, a.miss, workdir,
                  a.batches)
        finally:
            if a.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Conversion throughput and peak memory on a synthetic embedding table.

Writes a model with one table of ``--size-gb`` (default 10 GB: 40M random 64-bit keys x
64 floats) in HugeCTR's sparse folder format into a temporary directory, converts it with
``convert(..., convert_embedding=True)`` in a child process, and prints the median wall
time, MB/s of table bytes and the child's peak RSS (VmHWM), also per phase.

    python bench/convert_throughput.py --size-gb 0.5 --repeat 3
    python bench/convert_throughput.py --onnx-ir     # compare the table write with onnx-ir's
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hugectr2onnx.hugectr.writer import ModelBuilder, save_model  # noqa: E402

SLOTS = 26
CHUNK_ROWS = 1 << 18


def hashed_keys(start: int, count: int) -> np.ndarray:
    """splitmix64's finalizer: a bijection of uint64, so distinct inputs give distinct keys."""
    x = np.arange(start, start + count, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x.view(np.int64)


def make_model(directory: Path, keys: int, vec: int, seed: int = 0, hashed: bool = True):
    """Graph, dense file and a placeholder table with our writer, then the big table appended
    in chunks in the same folder layout (key: int64, emb_vector: float32 rows)."""
    b = (ModelBuilder().input(dense_dim=13, sparse=[dict(top="s", slot_num=SLOTS)])
         .embedding(bottom="s", top="e", vec_size=vec)
         .dense("Reshape", "e", "r", leading_dim=SLOTS * vec)
         .dense("Concat", ["r", "dense"], "c")
         .dense("InnerProduct", "c", "fc1", fc_param={"num_output": 64})
         .dense("ReLU", "fc1", "a1")
         .dense("InnerProduct", "a1", "fc2", fc_param={"num_output": 1})
         .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))
    art = save_model(b, directory, tables=[{"keys": np.arange(1, dtype=np.int64),
                                            "vectors": np.zeros((1, vec), np.float32)}])
    folder = Path(art.sparse_models[0])
    rng = np.random.default_rng(seed)
    with open(folder / "key", "wb") as fk, open(folder / "emb_vector", "wb") as fv:
        for start in range(0, keys, CHUNK_ROWS):
            n = min(CHUNK_ROWS, keys - start)
            (hashed_keys(start, n) if hashed else np.arange(start, start + n)).tofile(fk)
            rng.random((n, vec), dtype=np.float32).tofile(fv)
    return art


CHILD = r"""
import json, os, sys, time
args = json.loads(sys.argv[1])

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

phases = {}
def timed(name, fn):
    def wrapper(*a, **kw):
        can_reset = reset_hwm()
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            p = phases.setdefault(name, {"s": 0.0, "peak_mb": 0.0})
            p["s"] += time.perf_counter() - t
            p["peak_mb"] = max(p["peak_mb"], hwm_mb()) if can_reset else float("nan")
    return wrapper

from hugectr2onnx import converter
from hugectr2onnx.onnx_backend import embedding, export
converter.load_model = timed("load", converter.load_model)
converter.check_keys = timed("check_keys", converter.check_keys)
embedding.build_index = timed("lookup_index", embedding.build_index)
converter.build_model = timed("build_model", converter.build_model)
converter.save_model = timed("save", converter.save_model)
if args.get("buffered"):
    from hugectr2onnx.onnx_backend import external
    external.DataFile._kernel_copy = lambda self, *a: 0
t = time.perf_counter()
if args.get("onnx_ir"):
    import numpy as np
    import onnx_ir as ir
    folder = args["sparse"][0]
    k = os.path.getsize(os.path.join(folder, "key")) // 8
    vec = args["vec"]
    out = args["out"]
    x = ir.Value(name="rows", shape=ir.Shape(["n"]), type=ir.TensorType(ir.DataType.INT64))
    table = ir.ExternalTensor("emb_vector", 0, k * vec * 4, ir.DataType.FLOAT,
                              shape=ir.Shape([k, vec]), name="table", base_dir=folder)
    w = ir.Value(name="table", const_value=table, shape=table.shape, type=ir.TensorType(table.dtype))
    node = ir.Node("", "Gather", [w, x], num_outputs=1)
    node.outputs[0].name = "y"
    graph = ir.Graph([x], node.outputs, nodes=[node], initializers=[w], opset_imports={"": 17})
    ir.save(ir.Model(graph, ir_version=8), out, external_data=os.path.basename(out) + ".data",
            alignment=65536)
    report = {"strategy": "-", "files": [out]}
else:
    r = converter.convert(args["out"], args["graph"], args["dense"], True, args["sparse"],
                          lookup=args["lookup"], external_data=args["external"],
                          progress=False)
    report = {"strategy": r.tables[0]["strategy"], "files": r.files}
peak = max([hwm_mb()] + [p["peak_mb"] for p in phases.values()])  # phases reset VmHWM
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": peak, "phases": phases,
                  **report}))
"""


def run_once(art, out: Path, args, onnx_ir: bool) -> dict:
    args = dict(out=str(out), graph=art.graph_config, dense=art.dense_model,
                sparse=art.sparse_models, lookup=args.lookup, vec=args.vec, onnx_ir=onnx_ir,
                buffered=args.buffered, external=args.external_data)
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                          text=True)
    if proc.returncode:
        raise SystemExit(f"conversion failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gb", type=float, default=10.0, help="table size (40M keys x 64 per 10)")
    p.add_argument("--vec", type=int, default=64)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--lookup", default="auto")
    p.add_argument("--dense-keys", action="store_true",
                   help="keys 0..K-1 instead of random 64-bit ones (a direct lookup)")
    p.add_argument("--external-data", default="always", choices=("auto", "always", "never"))
    p.add_argument("--dir", default=None, help="where the temporary files go")
    p.add_argument("--onnx-ir", action="store_true",
                   help="also time onnx-ir saving the table as an ExternalTensor (no zero row)")
    p.add_argument("--buffered", action="store_true",
                   help="copy with read/write through a buffer instead of copy_file_range")
    args = p.parse_args(argv)
    keys = int(args.size_gb * 4_000_000 * 64 / args.vec)
    table_bytes = keys * args.vec * 4
    work = Path(tempfile.mkdtemp(prefix="h2o_bench_", dir=args.dir))
    try:
        t = time.perf_counter()
        art = make_model(work / "in", keys, args.vec, hashed=not args.dense_keys)
        print(f"table: {keys:,} {'dense' if args.dense_keys else 'hashed'} keys x {args.vec} = {table_bytes / 1e9:.2f} GB, "
              f"written in {time.perf_counter() - t:.1f} s")
        modes = [("hugectr2onnx convert", False)] + ([("onnx-ir save", True)] if args.onnx_ir
                                                     else [])
        for label, ir_mode in modes:
            runs = []
            for _ in range(args.repeat):
                out_dir = work / "out"
                out_dir.mkdir()
                runs.append(run_once(art, out_dir / "model.onnx", args, ir_mode))
                shutil.rmtree(out_dir)
            secs = statistics.median(r["seconds"] for r in runs)
            peak = max(r["peak_mb"] for r in runs)
            print(f"{label}: median {secs:.2f} s over {len(runs)} run(s), "
                  f"{table_bytes / 1e6 / secs:.0f} MB/s, peak RSS {peak:.0f} MB, "
                  f"lookup {runs[0]['strategy']}")
            for name, ph in runs[-1]["phases"].items():
                print(f"  {name:13s} {ph['s']:7.2f} s  peak RSS {ph['peak_mb']:7.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``predict`` against a bare ``session.run`` loop over the same batches already in memory.

DLRM as in the zoo (26 slots x 128-d, 13 dense, BatchNorm top MLP), batch 4096, 2 threads,
datasets in Norm (two files) and Parquet (two files). Prints per format the medians of
``--repeats`` pairs of runs (alternating order) and the median of the per-pair ratios, the read-only rate of the reader, and the peak
RSS of ``predict`` in a fresh process on the dataset and on one 10x larger (the same files
listed ten times).

    python bench/predict_throughput.py [--samples 40000] [--keys 100000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hugectr2onnx import converter, zoo  # noqa: E402
from hugectr2onnx.data import DataLayout, open_dataset  # noqa: E402
from hugectr2onnx.data.writers import write_file_list, write_norm, write_parquet  # noqa: E402
from hugectr2onnx.predict import OrtScorer, predict  # noqa: E402


def build(root: Path, keys: int, samples: int, seed: int = 0):
    art = zoo.save(zoo.dlrm(), root / "dlrm", num_keys=keys, seed=seed)
    onnx_path = root / "dlrm.onnx"
    converter.convert(str(onnx_path), art.graph_config, art.dense_model, True,
                      art.sparse_models, art.ntp_file, key_type="I32")
    layout = DataLayout.from_onnx(onnx_path)
    rng = np.random.default_rng(seed)
    labels = (rng.random((samples, 1)) < 0.25).astype(np.float32)
    dense = rng.standard_normal((samples, layout.dense_dim)).astype(np.float32)
    k = rng.integers(0, 2 * keys, (samples, layout.slot_num, 1))  # about half unseen
    half = samples // 2
    for i, (lo, hi) in enumerate(((0, half), (half, samples))):
        write_norm(root / f"part{i}.bin", layout, labels[lo:hi], dense[lo:hi], [k[lo:hi]])
    write_file_list(root / "norm_list.txt", [str(root / f"part{i}.bin") for i in range(2)])
    pq_list = write_parquet(root / "pq", layout, labels, dense, [k], files=2)
    for name, files in (("norm", [str(root / f"part{i}.bin") for i in range(2)]),
                        ("parquet", [str(root / "pq" / f"part_{i}.parquet") for i in range(2)])):
        write_file_list(root / (f"{name}_x10.txt" if name == "norm" else "pq/_x10.txt"),
                        files * 10)
    return onnx_path, layout, {"norm": root / "norm_list.txt", "parquet": pq_list}, \
        {"norm": root / "norm_x10.txt", "parquet": root / "pq" / "_x10.txt"}


def variable_norm_rate(root: Path, samples: int, batch: int, repeats: int) -> tuple[float, float]:
    """Reader alone on multi-hot Norm data (26 slots, 0-3 keys each: the pointer-doubling
    path) and on the same data with 3 keys everywhere (the fixed-run path): samples/s."""
    from hugectr2onnx.data import SparseSlots
    layout = DataLayout(("label",), (1,), "dense", 13,
                        (SparseSlots("keys", 26, (3,) * 26, False),), "I32")
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 1 << 30, (samples, 26, 3))
    count = rng.integers(0, 4, (samples, 26))
    labels = rng.random((samples, 1))
    dense = rng.random((samples, 13))
    rates = []
    for name, cnt in (("variable", count), ("fixed", np.full_like(count, 3))):
        path = root / f"{name}.bin"
        write_norm(path, layout, labels, dense, [keys], nnz=[cnt])
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _b in open_dataset(path, "norm", layout, batch):
                pass
            times.append(time.perf_counter() - t)
        rates.append(samples / statistics.median(times))
    return rates[0], rates[1]


def bare_loop(scorer: OrtScorer, batches: list[dict]) -> float:
    start = time.perf_counter()
    for feeds in batches:
        scorer.session.run(scorer.output_names, feeds)
    return time.perf_counter() - start


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_child(args) -> None:
    """Run predict once; print the peak RSS (KiB, VmHWM: fresh at exec, unlike ru_maxrss
    which keeps the forked parent's size) of loading the model and of the scoring alone
    (the high-water mark reset through /proc/self/clear_refs once the session exists)."""
    scorer = OrtScorer(args.onnx, args.threads)
    layout = DataLayout.from_onnx(args.onnx)
    load_peak = _status_kib("VmHWM")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    result = predict(args.onnx, args.data, args.fmt, batch_size=args.batch, scorer=scorer,
                     layout=layout, progress=False)
    scoring = _status_kib("VmHWM")
    print(json.dumps({"samples": result.samples, "load_peak_kib": load_peak,
                      "peak_kib": max(load_peak, scoring),
                      "scoring_peak_kib": scoring if reset else None}))


def peak_rss(onnx_path, data, fmt, batch, threads) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rss-child", str(onnx_path), str(data), fmt,
                          "--batch", str(batch), "--threads", str(threads)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=40000)
    ap.add_argument("--keys", type=int, default=100000, help="trained keys in the table")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--formats", nargs="+", default=["norm", "parquet"])
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS runs")
    ap.add_argument("--rss-child", nargs=3, metavar=("ONNX", "DATA", "FMT"))
    args = ap.parse_args()
    if args.rss_child:
        args.onnx, args.data, args.fmt = args.rss_child
        rss_child(args)
        return
    with tempfile.TemporaryDirectory(prefix="predict_bench") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        onnx_path, layout, sources, tenfold = build(root, args.keys, args.samples)
        print(f"DLRM (26 slots x 128, {args.keys} keys), {args.samples} samples, batch "
              f"{args.batch}, {args.threads} threads; built in {time.perf_counter() - t0:.0f} s")
        scorer = OrtScorer(onnx_path, args.threads)
        for fmt in args.formats:
            batches = [b.inputs for b in open_dataset(sources[fmt], fmt, layout, args.batch)]
            scorer.run(batches[0])  # warm-up
            reads, bare, full = [], [], []
            for i in range(args.repeats):  # pairs close in time share the machine's load
                t = time.perf_counter()
                for _b in open_dataset(sources[fmt], fmt, layout, args.batch):
                    pass
                reads.append(time.perf_counter() - t)
                for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                    if which == 0:
                        bare.append(bare_loop(scorer, batches))
                        continue
                    t = time.perf_counter()
                    predict(onnx_path, sources[fmt], fmt, batch_size=args.batch, scorer=scorer,
                            layout=layout, progress=False)
                    full.append(time.perf_counter() - t)
            n = args.samples
            b, f, r = (statistics.median(x) for x in (bare, full, reads))
            ratio = statistics.median(x / y for x, y in zip(bare, full))
            print(f"{fmt:8s} bare session.run {n / b:9,.0f} samples/s | predict {n / f:9,.0f} "
                  f"samples/s | ratio {ratio:.3f} (median of per-pair ratios; of medians "
                  f"{b / f:.3f}) | reader alone {n / r:10,.0f} samples/s "
                  f"(medians of {args.repeats})")
        var, fixed = variable_norm_rate(root, args.samples, args.batch, args.repeats)
        print(f"norm multi-hot reader alone (26 slots x 0-3 keys): {var:,.0f} samples/s "
              f"variable length, {fixed:,.0f} samples/s all 3 keys")
        if not args.no_rss:
            for fmt in args.formats:
                one = peak_rss(onnx_path, sources[fmt], fmt, args.batch, args.threads)
                ten = peak_rss(onnx_path, tenfold[fmt], fmt, args.batch, args.threads)
                growth = ten["peak_kib"] / one["peak_kib"] - 1
                print(f"{fmt:8s} peak RSS {one['peak_kib'] / 1024:7.1f} MiB at {one['samples']} "
                      f"samples, {ten['peak_kib'] / 1024:7.1f} MiB at {ten['samples']} samples: "
                      f"{100 * growth:+.1f}% (loading the model alone peaks at "
                      f"{one['load_peak_kib'] / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()

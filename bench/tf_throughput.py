"""TensorFlow backend throughput: the exported SavedModel's ``serving_default`` (loaded with
``tf.saved_model.load``) against ONNX Runtime on the converted model, same inputs, and
Keras ``train_on_batch`` steps of the same model, batch 4096, 2 threads each. Serving
rounds alternate A B B A; the ratio is the median of the per-round ratios.

    python bench/tf_throughput.py [--models dlrm dcn ...] [--batch 4096] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hugectr2onnx import converter, zoo  # noqa: E402
from hugectr2onnx.tf import export_saved_model, load_model  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

SIZES = {"dlrm": dict(slots=26, bottom=(512, 256, 128)), "dcn": {}, "wdl": {}, "deepfm": {}}


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(a, b, repeats: int):
    """Medians of a and b and of the per-round ratio b/a, rounds run A B B A so that load
    from other jobs on a shared machine falls on both sides."""
    a(), b()  # warm-up (tracing, allocations)
    ta, tb, ratios = [], [], []
    for _ in range(repeats):
        x1, y1, y2, x2 = seconds(a), seconds(b), seconds(b), seconds(a)
        ta += [x1, x2]
        tb += [y1, y2]
        ratios.append((y1 + y2) / (x1 + x2))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["dlrm", "dcn"], choices=sorted(SIZES))
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--keys", type=int, default=20000, help="keys per table")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f"batch {args.batch}, {args.keys} hashed keys per table, {args.threads} threads, "
          f"medians of {args.repeats} A B B A rounds (ratio: SavedModel / ORT per round)")
    print(f"{'model':8} {'ORT ms':>8} {'SavedModel ms':>14} {'ratio':>6} {'train step ms':>14}")
    for name in args.models:
        with tempfile.TemporaryDirectory() as d:
            art = zoo.save(zoo.MODELS[name](**SIZES[name]), Path(d) / name, hashed=True,
                           num_keys=args.keys)
            onnx_path = Path(d) / f"{name}.onnx"
            converter.convert(str(onnx_path), art.graph_config, art.dense_model, True,
                              art.sparse_models, art.ntp_file)
            model = load_model(art.graph_config, art.dense_model, art.sparse_models, art.ntp_file)
            feeds = random_feeds(model.graph, args.batch, convert_embedding=True)
            export_saved_model(model, Path(d) / "sm")
            serve = tf.saved_model.load(str(Path(d) / "sm")).signatures["serving_default"]
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            tf_feeds = {k: tf.constant(v) for k, v in feeds.items()}
            got = serve(**tf_feeds)
            want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
            diff = max(float(np.abs(got[k].numpy() - want[k]).max()) for k in want)
            assert diff < 1e-4, f"{name}: SavedModel and ONNX differ by {diff}"
            t_ort, t_tf, ratio = paired(lambda: sess.run(None, feeds), lambda: serve(**tf_feeds),
                                        args.repeats)
            labels = {o.name: np.ones((args.batch, 1), np.float32) for o in model.graph.outputs}
            model.compile("adam")
            step = lambda: model.train_on_batch(feeds, labels)  # noqa: E731
            step()
            t_train = statistics.median(seconds(step) for _ in range(args.repeats))
            print(f"{name:8} {t_ort * 1e3:8.1f} {t_tf * 1e3:14.1f} {ratio:6.2f} "
                  f"{t_train * 1e3:14.1f}")


if __name__ == "__main__":
    main()

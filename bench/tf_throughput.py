"""TensorFlow backend throughput: the exported SavedModel's ``serving_default`` (loaded with
``tf.saved_model.load``) against ONNX Runtime on the converted model, same inputs, and
Keras ``train_on_batch`` steps of the same model, batch 4096, 2 threads each.

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


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (tracing, allocations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
          f"median of {args.repeats}")
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
            t_ort = median_seconds(lambda: sess.run(None, feeds), args.repeats)
            t_tf = median_seconds(lambda: serve(**tf_feeds), args.repeats)
            labels = {o.name: np.ones((args.batch, 1), np.float32) for o in model.graph.outputs}
            model.compile("adam")
            t_train = median_seconds(lambda: model.train_on_batch(feeds, labels), args.repeats)
            print(f"{name:8} {t_ort * 1e3:8.1f} {t_tf * 1e3:14.1f} {t_tf / t_ort:6.2f} "
                  f"{t_train * 1e3:14.1f}")


if __name__ == "__main__":
    main()

"""End-to-end ONNX Runtime throughput of converted models (2 threads, batch 4096).

Converts zoo architectures with this package and, when ``--nvidia DIR`` points at a checkout of
NVIDIA's ``onnx_converter`` (the folder holding its ``hugectr2onnx`` package), with NVIDIA's
converter too, then times both graphs on the same inputs. Dense-only mode (embedding outputs
as inputs) compares the dense graphs alone, which is where the two converters' graphs differ.

    python bench/model_throughput.py [--models dlrm dcn ...] [--nvidia PATH] [--repeats 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import importlib
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hugectr2onnx import converter, zoo  # noqa: E402
from hugectr2onnx.loader import load_model  # noqa: E402
from hugectr2onnx.verify import random_feeds  # noqa: E402

SIZES = {  # DLRM as in the issue: 26 slots x 128-d with BatchNorm
    "dlrm": dict(slots=26, bottom=(512, 256, 128)),
}


def load_nvidia(path: str):
    """Import NVIDIA's converter under a private name; shim what onnx >= 1.19 removed."""
    import onnx
    from onnx import helper

    if not hasattr(onnx, "mapping"):
        table = {np.dtype(helper.tensor_dtype_to_np_dtype(t)): t
                 for t in (1, 6, 7, 9, 10, 11)}
        onnx.mapping = types.SimpleNamespace(NP_TYPE_TO_TENSOR_TYPE=table)
    if "newshape" not in np.reshape.__doc__.split("\n", 3)[0]:
        plain = np.reshape

        def reshape(a, shape=None, *args, newshape=None, **kw):  # numpy 2.4 dropped newshape
            return plain(a, newshape if shape is None else shape, *args, **kw)

        np.reshape = reshape
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "hugectr2onnx"}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, path)
    try:
        return importlib.import_module("hugectr2onnx.converter")
    finally:
        sys.path.remove(path)
        for k in [k for k in sys.modules if k.split(".")[0] == "hugectr2onnx"]:
            sys.modules[f"nvidia_{k}"] = sys.modules.pop(k)
        sys.modules.update(saved)


def session(path: Path, feeds: dict, threads: int):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feeds.items() if k in names}
    sess.run(None, feed)
    return sess, feed


def time_sessions(runs: list, repeats: int) -> list[float]:
    """Median seconds per session; the sessions take turns, so drift and load from other
    processes hit all of them alike."""
    times = [[] for _ in runs]
    for _ in range(repeats):
        for k, (sess, feed) in enumerate(runs):
            t = time.perf_counter()
            sess.run(None, feed)
            times[k].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(zoo.MODELS))
    ap.add_argument("--nvidia", help="folder containing NVIDIA's hugectr2onnx package")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    nvidia = load_nvidia(args.nvidia) if args.nvidia else None
    print(f"batch {args.batch}, {args.threads} threads, median of {args.repeats} runs")
    print(f"{'model':<16}{'ours ms':>10}{'samples/s':>12}" + (f"{'nvidia ms':>11}{'ratio':>8}" if nvidia else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            builder = zoo.MODELS[name](**SIZES.get(name, {}))
            art = zoo.save(builder, Path(tmp) / name, num_keys=1000)
            graph = load_model(art.graph_config, art.dense_model, None, art.ntp_file)
            feeds = random_feeds(graph, args.batch, convert_embedding=False, seed=0)
            ours = Path(tmp) / f"{name}.onnx"
            converter.convert(str(ours), art.graph_config, art.dense_model, False, None,
                              art.ntp_file)
            runs = [session(ours, feeds, args.threads)]
            if nvidia:
                theirs = Path(tmp) / f"{name}_nvidia.onnx"
                with contextlib.redirect_stdout(io.StringIO()):  # it prints every layer
                    nvidia.convert(str(theirs), art.graph_config, art.dense_model, False, None,
                                   art.ntp_file)
                runs.append(session(theirs, feeds, args.threads))
            medians = time_sessions(runs, args.repeats)
            t_ours = medians[0]
            line = f"{name:<16}{t_ours * 1e3:>10.2f}{args.batch / t_ours:>12.0f}"
            if nvidia:
                line += f"{medians[1] * 1e3:>11.2f}{medians[1] / t_ours:>8.2f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()

"""``hugectr2onnx to-tf``: a HugeCTR model as a TensorFlow SavedModel serving raw inputs."""

from __future__ import annotations

import argparse
import os

from ..errors import UsageError
from .common import add_model_args, padding_key
from .verify import add_check_args

HELP = "write a HugeCTR model as a TensorFlow SavedModel (extra [tf])"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("-o", "--output", dest="output", required=True,
                   help="SavedModel directory (an existing SavedModel is replaced)")
    p.add_argument("--verify", action="store_true",
                   help="reload the SavedModel and compare it with the numpy reference")
    add_check_args(p)


def run(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up log lines
    try:
        from .. import tf as tf_backend
    except ImportError as e:
        raise UsageError(f"TensorFlow is not installed ({e}): pip install 'hugectr2onnx[tf]'")
    pad = padding_key(args.padding_key)
    model = tf_backend.load_model(args.graph_config, args.dense_model, args.sparse_models,
                                  args.ntp_file, key_type=args.key_type, padding_key=pad,
                                  projection_dims=args.projection_dims, num_gpus=args.num_gpus,
                                  embedding_collection=args.embedding_collection)
    path = tf_backend.export_saved_model(model, args.output)
    names = ", ".join(model.input_specs())
    print(f"wrote SavedModel {path}: serving_default({names}) -> "
          f"{', '.join(o.name for o in model.graph.outputs)}")
    if args.verify:
        report = tf_backend.verify_saved_model(path, model.graph, batch=args.batch,
                                               seed=args.seed, atol=args.atol, rtol=args.rtol,
                                               padding_key=pad,
                                               num_gpus=args.num_gpus,
                                               convert_embedding=model.convert_embedding)
        print(report.summary())
        return 0 if report.ok else 1
    return 0

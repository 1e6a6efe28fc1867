"""``hugectr2onnx to-torch``: a HugeCTR model as a PyTorch checkpoint."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import add_model_args, padding_key

HELP = "load a HugeCTR model into PyTorch and save a checkpoint (state_dict + graph)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="checkpoint path (.pt)")
    p.add_argument("--max-new-keys", type=int, default=None, metavar="N",
                   help="rows reserved per table for keys first seen in training (default: up "
                   "to the table's max_vocabulary_size_global; 0 freezes the vocabulary)")
    p.add_argument("--sparse-grad", action="store_true",
                   help="sparse gradients for the embedding tables")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when it is a terminal)")
    p.add_argument("--strict-finite", action="store_true",
                   help="fail on NaN/Inf weights instead of warning")


def import_torch_backend():
    """``hugectr2onnx.torch``, or a usage error saying how to install it."""
    try:
        import hugectr2onnx.torch as backend
    except ImportError as e:
        raise UsageError(f"this command needs PyTorch: pip install 'hugectr2onnx[torch]' ({e})")
    return backend


def run(args) -> int:
    backend = import_torch_backend()
    module = backend.load_model(
        args.graph_config, args.dense_model, args.sparse_models, args.ntp_file,
        key_type=args.key_type, padding_key=padding_key(args.padding_key),
        projection_dims=args.projection_dims, num_gpus=args.num_gpus,
        strict_finite=args.strict_finite, max_new_keys=args.max_new_keys,
        sparse_grad=args.sparse_grad, progress=args.progress,
        embedding_collection=args.embedding_collection)
    path = backend.save_checkpoint(module, args.output)
    print(backend.describe(module))
    print(f"wrote {path}")
    return 0

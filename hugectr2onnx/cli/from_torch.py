"""``hugectr2onnx from-torch``: a PyTorch checkpoint written back as HugeCTR files."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .to_torch import import_torch_backend

HELP = "write a PyTorch checkpoint (from to-torch) back as HugeCTR graph, dense, ntp, sparse files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint written by to-torch or save_checkpoint()")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--prefix", default="model", help="file name prefix (default model)")
    p.add_argument("--iteration", type=int, default=0,
                   help="iteration in the file names, e.g. model_dense_<N>.model (default 0)")


def run(args) -> int:
    if args.iteration < 0:
        raise UsageError(f"--iteration must not be negative, found {args.iteration}")
    backend = import_torch_backend()
    module = backend.load_checkpoint(args.checkpoint)
    out = backend.save_hugectr(module, args.output, prefix=args.prefix, iteration=args.iteration)
    print(backend.describe(module))
    for label, path in (("graph", out.graph_config), ("dense", out.dense_model),
                        ("ntp", out.ntp_file)):
        if path:
            print(f"  {label}: {path}")
    for path in out.sparse_models:
        print(f"  sparse: {path}")
    if out.embedding_collection:  # for --embedding-collection
        print(f"  embedding collection: {out.embedding_collection}")
    return 0

"""``hugectr2onnx verify``: compare an ONNX model with the numpy reference."""

from __future__ import annotations

import argparse

from .common import add_model_args, model_files, padding_key

HELP = "compare an ONNX model with the numpy reference"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--onnx", dest="onnx_model_path", required=True, help="converted model")
    add_check_args(p)


def add_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=64, help="samples per check (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--atol", type=float, default=1e-5,
                   help="largest absolute difference accepted (default 1e-5)")


def run(args) -> int:
    model_files(args, want_sparse=_takes_keys(args.onnx_model_path))
    return check(args, args.sparse_models is not None or bool(args.embedding_collection))


def _takes_keys(onnx_path) -> bool:
    """Whether the model holds its tables (int64 key inputs): then it needs --sparse."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # compare() reports an unreadable model as a typed error
        return False
    return any(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in model.graph.input)


def check(args, convert_embedding: bool) -> int:
    from ..loader import load_model
    from ..verify import compare, random_feeds

    pad = padding_key(args.padding_key)
    graph = load_model(args.graph_config, args.dense_model,
                       args.sparse_models if convert_embedding else None, args.ntp_file,
                       key_type=args.key_type, projection_dims=args.projection_dims,
                       embedding_collection=args.embedding_collection)
    feeds = random_feeds(graph, args.batch, convert_embedding=convert_embedding,
                         seed=args.seed, padding_key=pad)
    report = compare(graph, args.onnx_model_path, feeds, padding_key=pad,
                     num_gpus=args.num_gpus, atol=args.atol)
    print(report.summary())
    return 0 if report.ok else 1

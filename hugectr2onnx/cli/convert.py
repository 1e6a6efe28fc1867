"""``hugectr2onnx convert``: the drop-in conversion."""

from __future__ import annotations

import argparse

from ..onnx_backend.embedding import TABLE_ORDERS
from ..onnx_backend.lookup import STRATEGIES as LOOKUPS
from .common import add_model_args, model_files, padding_key
from .verify import add_check_args, check

HELP = "convert a HugeCTR model to ONNX"


def add_arguments(c: argparse.ArgumentParser) -> None:
    add_model_args(c)
    c.add_argument("-o", "--output", "--onnx-model-path", dest="onnx_model_path", required=True,
                   help="output .onnx path (a .onnx.data file is written beside it if needed)")
    c.add_argument("--convert-embedding", action="store_true",
                   help="include embedding tables; inputs become int64 keys")
    c.add_argument("--graph-name", default="hugectr", help="name of the ONNX graph")
    c.add_argument("--opset", type=int, default=17, help="ONNX opset, 13-21 (default 17)")
    c.add_argument("--lookup", choices=LOOKUPS, default="auto",
                   help="key lookup strategy (default auto)")
    c.add_argument("--table-order", choices=TABLE_ORDERS, default="auto",
                   help="hashed tables in the lookup's slot order (faster lookups; the table "
                   "is read into memory) or as stored (streamed); auto: slot order up to "
                   "4 GiB or a quarter of the RAM")
    c.add_argument("--external-data", choices=("auto", "always", "never"), default="auto",
                   help="tensors in a .data file: auto switches above ~1.8 GB")
    c.add_argument("--external-threshold", type=int, default=None, metavar="BYTES",
                   help="with --external-data auto, switch above this size (default ~1.8 GB)")
    c.add_argument("--slot-size-array", type=int, nargs="+", default=None,
                   help="the Parquet reader's slot_size_array of the training run, recorded "
                   "in the model so that predict adds the same key offsets")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when it is a terminal)")
    c.add_argument("--strict-finite", action="store_true",
                   help="fail on NaN/Inf weights instead of warning")
    c.add_argument("--verify", action="store_true",
                   help="after converting, compare with the numpy reference on random inputs")
    add_check_args(c)


def run(args) -> int:
    from ..converter import convert
    from ..options import ConvertOptions

    model_files(args, want_sparse=args.convert_embedding)
    options = ConvertOptions(
        opset=args.opset, key_type=args.key_type, padding_key=padding_key(args.padding_key),
        lookup=args.lookup, external_data=args.external_data,
        external_threshold=args.external_threshold, projection_dims=args.projection_dims,
        num_gpus=args.num_gpus, strict_finite=args.strict_finite, progress=args.progress,
        table_order=args.table_order, embedding_collection=args.embedding_collection,
        slot_size_array=tuple(args.slot_size_array) if args.slot_size_array else None)
    report = convert(args.onnx_model_path, args.graph_config, args.dense_model,
                     args.convert_embedding, args.sparse_models, args.ntp_file,
                     args.graph_name, options=options)
    print(report.summary())
    if args.verify:
        return check(args, args.convert_embedding or bool(args.embedding_collection))
    return 0

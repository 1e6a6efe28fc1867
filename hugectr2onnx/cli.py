"""Command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .errors import ConversionError
from .onnx_backend.embedding import TABLE_ORDERS
from .onnx_backend.lookup import STRATEGIES as LOOKUPS

INTERNAL_ERROR = 70  # EX_SOFTWARE; input errors exit with ConversionError.exit_code (2-4)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", "--graph-config", dest="graph_config", required=True,
                   help="graph JSON written by Model.graph_to_json")
    p.add_argument("--dense", "--dense-model", dest="dense_model", required=True,
                   help="dense weights file (P_dense_N.model)")
    p.add_argument("--sparse", "--sparse-models", dest="sparse_models", nargs="+", default=None,
                   help="sparse models in embedding order (folders, or legacy single files)")
    p.add_argument("--ntp", "--ntp-file", dest="ntp_file", default=None,
                   help="BatchNorm statistics (P_dense_N.model.ntp.json)")
    p.add_argument("--key-type", choices=("I64", "I32"), default="I64",
                   help="key width of legacy single-file sparse models (default I64)")
    p.add_argument("--padding-key", default="-1",
                   help="key marking absent entries of multi-hot slots, or 'none' (default -1)")
    p.add_argument("--projection-dims", type=int, nargs="+", default=None,
                   help="DCN-v2 projection_dim per MultiCross layer (default: from file size)")
    p.add_argument("--num-gpus", type=int, default=None,
                   help="GPU count of a Localized training run (default: from the graph)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hugectr2onnx",
                                     description="Convert NVIDIA HugeCTR models to ONNX.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="convert a HugeCTR model to ONNX")
    _add_model_args(c)
    c.add_argument("-o", "--output", "--onnx-model-path", dest="onnx_model_path", required=True,
                   help="output .onnx path (a .onnx.data file is written beside it if needed)")
    c.add_argument("--convert-embedding", action="store_true",
                   help="include embedding tables; inputs become int64 keys")
    c.add_argument("--graph-name", default="hugectr")
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
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when it is a terminal)")
    c.add_argument("--strict-finite", action="store_true",
                   help="fail on NaN/Inf weights instead of warning")
    c.add_argument("--verify", action="store_true",
                   help="after converting, compare with the numpy reference on random inputs")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")

    v = sub.add_parser("verify", help="compare an ONNX model with the numpy reference")
    _add_model_args(v)
    v.add_argument("--onnx", dest="onnx_model_path", required=True, help="converted model")
    v.add_argument("--batch", type=int, default=64)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--atol", type=float, default=1e-5)
    v.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    return parser


def _padding(value: str):
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConversionError(f"--padding-key must be an integer or 'none', found {value!r}")


def _verify(args, padding_key, convert_embedding: bool) -> int:
    from .converter import load_model
    from .verify import compare, random_feeds

    graph = load_model(args.graph_config, args.dense_model,
                       args.sparse_models if convert_embedding else None, args.ntp_file,
                       key_type=args.key_type, projection_dims=args.projection_dims)
    feeds = random_feeds(graph, getattr(args, "batch", 64), convert_embedding=convert_embedding,
                         seed=getattr(args, "seed", 0), padding_key=padding_key)
    report = compare(graph, args.onnx_model_path, feeds, padding_key=padding_key,
                     num_gpus=args.num_gpus, atol=getattr(args, "atol", 1e-5))
    print(report.summary())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        padding_key = _padding(args.padding_key)
        if args.command == "convert":
            from .converter import convert

            report = convert(args.onnx_model_path, args.graph_config, args.dense_model,
                             args.convert_embedding, args.sparse_models, args.ntp_file,
                             args.graph_name, opset=args.opset, key_type=args.key_type,
                             padding_key=padding_key, lookup=args.lookup,
                             external_data=args.external_data,
                             projection_dims=args.projection_dims, num_gpus=args.num_gpus,
                             strict_finite=args.strict_finite,
                             external_threshold=args.external_threshold,
                             progress=args.progress, table_order=args.table_order)
            print(report.summary())
            if args.verify:
                return _verify(args, padding_key, args.convert_embedding)
            return 0
        return _verify(args, padding_key, args.sparse_models is not None)
    except ConversionError as e:
        if args.debug:
            traceback.print_exc()
        print(f"hugectr2onnx: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("hugectr2onnx: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # not bad input but a bug here: say so, distinctly
        if args.debug:
            traceback.print_exc()
        print(f"hugectr2onnx: internal error: {type(e).__name__}: {_one_line(e)} (a bug in "
              f"hugectr2onnx: please report it with the output of --debug)", file=sys.stderr)
        return INTERNAL_ERROR


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())

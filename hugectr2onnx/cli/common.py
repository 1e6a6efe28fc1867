"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
import re

from ..errors import ConversionError, UsageError

# Python API names in error messages -> the flags a CLI user types
FLAG_NAMES = {
    "convert_embedding=True": "--convert-embedding",
    "convert_embedding": "--convert-embedding",
    "sparse_models": "--sparse",
    "ntp_file": "--ntp",
    "padding_key": "--padding-key",
    "num_gpus": "--num-gpus",
    "projection_dims": "--projection-dims",
    "external_data='auto' or 'always'": "--external-data auto or always",
    "external_data": "--external-data",
    "external_threshold": "--external-threshold",
    "key_type": "--key-type",
    "strict_finite": "--strict-finite",
    "table_order": "--table-order",
}
_FLAG_RE = re.compile("|".join(rf"(?<![\w-]){re.escape(k)}(?![\w])" for k in FLAG_NAMES))


def cli_message(e: ConversionError) -> str:
    """The error's message in the CLI's vocabulary (the file and location are kept)."""
    whole = str(e)
    if not whole.endswith(e.detail):
        return whole
    detail = _FLAG_RE.sub(lambda m: FLAG_NAMES[m.group(0)], e.detail)
    return whole[:len(whole) - len(e.detail)] + detail


def add_model_args(p: argparse.ArgumentParser, *, dense_required: bool = True) -> None:
    """The HugeCTR files of one model, named as in NVIDIA's converter."""
    p.set_defaults(dense_required=dense_required)  # checked by model_files()
    p.add_argument("--graph", "--graph-config", dest="graph_config", required=True,
                   help="graph JSON written by Model.graph_to_json")
    p.add_argument("--dense", "--dense-model", dest="dense_model", default=None,
                   help="dense weights file (P_dense_N.model; default: the graph's "
                   "inference.dense_model_file)")
    p.add_argument("--sparse", "--sparse-models", dest="sparse_models", nargs="+", default=None,
                   help="sparse models in embedding order (folders, or legacy single files; "
                   "default: the graph's inference.sparse_model_files)")
    p.add_argument("--ntp", "--ntp-file", dest="ntp_file", default=None,
                   help="BatchNorm statistics (P_dense_N.model.ntp.json)")
    p.add_argument("--key-type", choices=("I64", "I32"), default="I64",
                   help="the training run's key type: width of legacy single-file sparse "
                   "models' keys; convert also records it in the model, for predict to read "
                   "Norm/RawAsync data (default I64)")
    p.add_argument("--padding-key", default="-1", type=_padding_key_arg,
                   help="key marking absent entries of multi-hot slots, or 'none' (default -1)")
    p.add_argument("--projection-dims", type=int, nargs="+", default=None,
                   help="DCN-v2 projection_dim per MultiCross layer (default: from file size)")
    p.add_argument("--num-gpus", type=int, default=None,
                   help="GPU count of a Localized training run (default: from the graph)")
    p.add_argument("--embedding-collection", metavar="EBC_JSON", default=None,
                   help="description of the model's embedding collection, naming its "
                   "embedding_dump folder (docs/embedding_collection.md)")


def model_files(args, *, want_sparse: bool) -> None:
    """Fill ``--dense``/``--sparse`` from the graph's ``inference`` block when not given."""
    from ..hugectr.inference import inference_files

    if args.dense_model is not None and (args.sparse_models is not None or not want_sparse):
        return
    found = inference_files(args.graph_config)
    if args.dense_model is None:
        args.dense_model = found.dense
    if args.sparse_models is None and want_sparse and found.sparse:
        args.sparse_models = found.sparse
    if args.dense_model is None and getattr(args, "dense_required", True):
        raise UsageError("--dense is required (the graph has no inference.dense_model_file)")


def padding_key(value):
    """``--padding-key``: an integer, or 'none' (parsed values pass through)."""
    if value is None or isinstance(value, int):
        return value
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--padding-key must be an integer or 'none', found {value!r}")


def _padding_key_arg(value: str):
    try:
        return padding_key(value)
    except UsageError as e:  # argparse prints usage and exits 2, before any file is read
        raise argparse.ArgumentTypeError(e.detail.removeprefix("--padding-key "))

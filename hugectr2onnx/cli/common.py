"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from ..errors import UsageError


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
                   "models' keys, and recorded in the model for reading Norm/RawAsync data "
                   "(default I64)")
    p.add_argument("--padding-key", default="-1",
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


def padding_key(value: str):
    """``--padding-key``: an integer, or 'none'."""
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--padding-key must be an integer or 'none', found {value!r}")

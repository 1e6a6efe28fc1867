"""``hugectr2onnx predict``: score a HugeCTR dataset, print AUC/logloss, write predictions."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "score a HugeCTR dataset (Norm, Raw, RawAsync, Parquet) with a converted model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data import FORMATS

    p.add_argument("--onnx", dest="onnx_model_path", required=True, help="converted model")
    p.add_argument("--data", required=True,
                   help="Norm: file list or data file; Raw/RawAsync: data file; Parquet: "
                   "_file_list.txt (with _metadata.json beside the Parquet files)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, required=True, help="dataset format")
    p.add_argument("-o", "--output", default=None,
                   help="predictions in file order: .npz (one array per output), .npy (the "
                   "only output), .csv or .parquet (one column per output element)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (samples, samples_per_s, per output auc and "
                   "logloss) on stdout and nothing else")
    p.add_argument("--batch-size", type=int, default=4096,
                   help="samples per batch, consecutive across files (default 4096; use the "
                   "training run's for models with batch statistics, e.g. PReLU_Dice)")
    p.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime intra-op threads (default: all cores)")
    p.add_argument("--slot-size-array", type=int, nargs="+", default=None,
                   help="Parquet vocabulary size per key column: keys get the running offsets "
                   "(default: the one recorded at convert, else none)")
    p.add_argument("--num-samples", type=int, default=None, help="stop after N samples")
    p.add_argument("--float-label-dense", action=argparse.BooleanOptionalAction, default=False,
                   help="Raw: labels and dense values are float32 (default int32, dense "
                   "values then transformed to ln(x+1)); RawAsync: dense values are float32")
    p.add_argument("--key-type", choices=("I32", "I64"), default=None,
                   help="key width of Norm/RawAsync files and Parquet key columns (default: "
                   "the training key type recorded at convert)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: only when it is a terminal)")
    from .redis import add_scoring_args
    add_scoring_args(p)


def run(args) -> int:
    from ..errors import UsageError
    from ..predict import check_output_path, predict, write_predictions

    if args.output:
        check_output_path(args.output)
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, found {args.threads}")
    from .redis import predict_with_engine
    result = predict_with_engine(args)
    if result is None:
        result = predict(args.onnx_model_path, args.data, args.fmt, batch_size=args.batch_size,
                         threads=args.threads, slot_size_array=args.slot_size_array,
                         key_type=args.key_type, num_samples=args.num_samples,
                         float_label_dense=args.float_label_dense, progress=args.progress)
    if args.output:
        write_predictions(args.output, result.outputs)
    if args.json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(result.summary())
        if args.output:
            print(f"wrote {args.output}")
    return 0

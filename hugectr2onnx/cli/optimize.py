"""``hugectr2onnx optimize IN.onnx -o OUT.onnx``: passes, fp16 or int8, a checked result."""

from __future__ import annotations

import argparse

from ..samples import SAMPLE_FORMATS

HELP = "optimize an ONNX model: graph passes, fp16 or int8; checked against the original"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..onnx_backend.passes import PASSES, optimize_defaults

    p.add_argument("input", help="ONNX model to optimize (its .data file is read beside it)")
    p.add_argument("-o", "--output", required=True,
                   help="optimized .onnx path (a .onnx.data file is written beside it if needed)")
    listing = "; ".join(f"{k}: {doc}" for k, (_, doc) in PASSES.items())
    p.add_argument("--passes", nargs="*", default=None, metavar="PASS",
                   help=f"passes to run, in order (default: {' '.join(optimize_defaults())}; "
                   f"none with an empty list). {listing}")
    p.add_argument("--fp16", action="store_true",
                   help="weights and compute in float16; float32 inputs/outputs and int64 keys "
                   "kept (keep_io_types); tables stay float32 unless --fp16-tables")
    p.add_argument("--fp16-tables", action="store_true",
                   help="embedding tables stored in float16 (about half the file), cast to "
                   "float32 after each lookup")
    p.add_argument("--int8", action="store_true",
                   help="dynamic int8 quantization of Gemm/MatMul (ONNX Runtime quantization)")
    p.add_argument("--int8-tables", action="store_true",
                   help="embedding tables stored as int8 with one float32 scale per row")
    p.add_argument("--per-channel", action="store_true",
                   help="with --int8, one weight scale per output column")
    p.add_argument("--data", default=None,
                   help="labelled samples for the check (default: random inputs): a HugeCTR "
                   "dataset (Norm/Raw file list or file, Parquet _file_list.txt), or an .npz "
                   "with one array per model input and a label array")
    p.add_argument("--format", dest="fmt", choices=SAMPLE_FORMATS, default=None,
                   help="format of --data (default: npz for a .npz file)")
    p.add_argument("--num-samples", type=int, default=16384,
                   help="samples of --data to check on (default 16384)")
    p.add_argument("--label", default=None,
                   help="label to compare on (default: the model's first output; for npz, "
                   "the one array that is not a model input)")
    p.add_argument("--max-auc-drop", type=float, default=None,
                   help="refuse to write the model when its AUC on --data is lower than the "
                   "original's by more than this")
    p.add_argument("--batch", type=int, default=256,
                   help="random samples for the check when no --data (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip running both models after optimizing")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="stage messages and progress bars on stderr (default: only when it "
                   "is a terminal, and for big models)")
    p.add_argument("--external-data", choices=("auto", "always", "never"), default="auto",
                   help="tensors in a .data file: auto switches above ~1.8 GB")


def run(args) -> int:
    from ..errors import UsageError
    from ..optimize import model_samples, optimize_file

    feeds = labels = None
    if args.data is not None:
        fmt = args.fmt or ("npz" if str(args.data).endswith(".npz") else None)
        if fmt is None:
            raise UsageError("--data needs --format (one of "
                             f"{', '.join(SAMPLE_FORMATS)})")
        feeds, labels = model_samples(args.input, args.data, fmt, args.num_samples, args.label)
    elif args.max_auc_drop is not None:
        raise UsageError("--max-auc-drop needs labelled data: pass --data and --format")
    result = optimize_file(args.input, args.output, passes=args.passes, fp16=args.fp16,
                           fp16_tables=args.fp16_tables, int8=args.int8,
                           int8_tables=args.int8_tables, per_channel=args.per_channel,
                           feeds=feeds, labels=labels, source=str(args.data), batch=args.batch,
                           seed=args.seed, check=args.check, max_auc_drop=args.max_auc_drop,
                           external_data=args.external_data, progress=args.progress)
    print(result.summary())
    return 0 if result.ok else 1

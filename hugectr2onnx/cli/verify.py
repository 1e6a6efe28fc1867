"""``hugectr2onnx verify``: compare an ONNX model with the numpy reference."""

from __future__ import annotations

import argparse
import json

from ..samples import SAMPLE_FORMATS
from .common import add_model_args, model_files, padding_key

HELP = "compare an ONNX model with the numpy reference; name the first diverging layer"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--onnx", dest="onnx_model_path", required=True,
                   help="converted model; whether it holds the embedding tables is read from "
                   "its inputs (--sparse is needed only when it does)")
    add_check_args(p)
    p.add_argument("--data", default=None,
                   help="check on the first --batch samples of this dataset instead of random "
                   "inputs (Norm/Raw file list or file, Parquet _file_list.txt, or .npz)")
    p.add_argument("--format", dest="fmt", choices=SAMPLE_FORMATS, default=None,
                   help="format of --data (default: npz for a .npz file)")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object instead of text")
    p.add_argument("--no-locate", dest="locate", action="store_false",
                   help="on a mismatch, do not rerun with every layer's output exposed to "
                   "find the first diverging layer")


def add_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=64, help="samples per check (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--atol", type=float, default=1e-5,
                   help="absolute tolerance (default 1e-5); a value passes when "
                   "|actual - expected| <= atol + rtol * |expected|, NaN equal to NaN")
    p.add_argument("--rtol", type=float, default=1e-5,
                   help="relative tolerance, as numpy.allclose (default 1e-5)")


def run(args) -> int:
    from ..runners import model_input_names

    inputs = model_input_names(args.onnx_model_path)  # a broken model fails here, typed
    model_files(args, want_sparse=_takes_keys(args.onnx_model_path, inputs))
    report = check_report(args)
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _takes_keys(onnx_path, inputs) -> bool:
    """Whether the model holds its tables (int64 key inputs): then --sparse may be read
    from the graph's inference block."""
    from ..runners import _load_skeleton
    from pathlib import Path

    model = _load_skeleton(Path(onnx_path))
    int64 = 7  # onnx.TensorProto.INT64
    return any(i.name in inputs and i.type.tensor_type.elem_type == int64
               for i in model.graph.input)


def check(args, *, seen_warnings=()) -> int:
    """Verify after ``convert --verify``; warnings already printed are not repeated."""
    report = check_report(args, seen_warnings=seen_warnings)
    print(report.summary())
    return 0 if report.ok else 1


def check_report(args, *, seen_warnings=()):
    from ..errors import UsageError
    from ..loader import attach_tables, load_model
    from ..runners import model_input_names
    from ..verify import compare, declared_inputs, embedding_mode, random_feeds

    pad = padding_key(args.padding_key)
    notes: list[str] = []
    graph = load_model(args.graph_config, args.dense_model, None, args.ntp_file,
                       key_type=args.key_type, projection_dims=args.projection_dims,
                       warn=notes.append, embedding_collection=args.embedding_collection)
    inputs = model_input_names(args.onnx_model_path)
    mode = embedding_mode(graph, inputs, file=args.onnx_model_path,
                          declared=declared_inputs(args.onnx_model_path))
    tableless = [e for e in graph.embeddings if e.table is None]  # collections have theirs
    if mode == "keys" and tableless:
        if args.sparse_models is None:
            first = next((e.bottom for e in tableless if e.bottom in inputs), tableless[0].bottom)
            raise UsageError(f"the model looks its embeddings up itself (input {first!r} takes "
                             f"keys): pass its sparse models with --sparse")
        attach_tables(graph, args.sparse_models, key_type=args.key_type, warn=notes.append)
        from ..loader import check_finite

        check_finite(graph, False, notes.append, args.dense_model)
    elif args.sparse_models is not None and getattr(args, "data", None) is None:
        takes = next((e.top for e in graph.embeddings if e.top in inputs), None)
        why = (f"the model takes embedding vectors (input {takes!r}), its tables are not in it"
               if takes else "the graph has no embeddings")
        notes.append(f"--sparse ignored: {why}")
    source = "random inputs"
    if getattr(args, "data", None) is not None:
        feeds, source = dataset_feeds(args, graph, inputs, mode, pad, notes), str(args.data)
    else:
        feeds = random_feeds(graph, args.batch, convert_embedding=mode == "keys",
                             seed=args.seed, padding_key=pad)
    seen = set(seen_warnings)
    return compare(graph, args.onnx_model_path, feeds, padding_key=pad, num_gpus=args.num_gpus,
                   atol=args.atol, rtol=getattr(args, "rtol", 0.0),
                   locate=getattr(args, "locate", True), source=source,
                   warnings=[n for n in dict.fromkeys(notes) if n not in seen])


def dataset_feeds(args, graph, inputs, mode: str, pad, notes) -> dict:
    """The model's inputs for the first --batch samples of --data. A model fed embedding
    vectors gets them looked up in the --sparse tables by the reference."""
    from ..data import DataLayout
    from ..errors import UsageError
    from ..loader import attach_tables
    from ..reference import embedding_reference
    from ..samples import pick_inputs, read_samples

    fmt = args.fmt or ("npz" if str(args.data).endswith(".npz") else None)
    if fmt is None:
        raise UsageError(f"--data needs --format (one of {', '.join(SAMPLE_FORMATS)})")
    layout = DataLayout.from_data_input(graph.data, key_type=args.key_type, padding_key=pad)
    if mode == "keys":
        layout = DataLayout.from_onnx(args.onnx_model_path)
    data, _ = read_samples(args.data, fmt, layout, args.batch)
    if mode == "vectors":
        if args.sparse_models is None:
            raise UsageError("the model takes embedding vectors and --data holds keys: pass "
                             "the sparse models with --sparse to look them up")
        attach_tables(graph, args.sparse_models, key_type=args.key_type, warn=notes.append)
        for emb in graph.embeddings:
            if emb.top not in data:
                keys = pick_inputs(data, [emb.bottom], str(args.data))[emb.bottom]
                data[emb.top] = embedding_reference(emb, keys, padding_key=pad,
                                                    num_gpus=args.num_gpus or 1)
    return pick_inputs(data, inputs, str(args.data))

"""``hugectr2onnx record``: a training script's graph JSON and collection description."""

from __future__ import annotations

import argparse

HELP = "run a HugeCTR training script without HugeCTR and write its graph JSON and its " \
       "embedding-collection description"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("script", help="the training script (e.g. train.py)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help="arguments for the script; everything after the script is the "
                   "script's, so give record's own options before it")
    p.add_argument("--graph", default="graph.json", help="graph JSON to write (graph.json)")
    p.add_argument("--description", default="ebc.json",
                   help="collection description to write (ebc.json)")
    p.add_argument("--dump-dir", default="dump/embedding_collection_0",
                   help="where model.embedding_dump(path) writes path/embedding_collection_0, "
                   "relative to the description (dump/embedding_collection_0)")
    p.add_argument("--stub", action="append", default=[], metavar="MODULE",
                   help="import MODULE (and its submodules) as a permissive stub, e.g. "
                   "mlperf_logging; repeatable")


def run(args) -> int:
    from ..record import record

    argv = list(args.script_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    result = record(args.script, argv, graph=args.graph, description=args.description,
                    dump_dir=args.dump_dir, stubs=args.stub)
    print(f"recorded {result.layers} layers into {result.graph_path}")
    if result.description_path:
        print(f"recorded {result.lookups} embedding-collection lookups into "
              f"{result.description_path}")
    return 0

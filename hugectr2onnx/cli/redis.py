"""``hugectr2onnx redis load``: embedding tables into Redis in HPS's layout."""

from __future__ import annotations

import argparse

HELP = "embedding tables in Redis, in the layout of HugeCTR's HPS"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="redis_command", required=True)
    load = sub.add_parser("load", help="bulk-load a model's tables (resumable, idempotent)",
                          description="Bulk-load a model's embedding tables into Redis in "
                          "HPS's layout: one hash hps_et{hps_et.MODEL.TABLE/pN}v per partition. "
                          "An interrupted load resumes where it stopped; a complete one is "
                          "skipped.")
    load.add_argument("--url", required=True,
                      help="redis://HOST:PORT (rediss:// for TLS); any node of a cluster")
    load.add_argument("--model", required=True, help="HPS model name")
    load.add_argument("--graph", "--graph-config", dest="graph_config", required=True,
                      help="graph JSON written by Model.graph_to_json")
    load.add_argument("--sparse", "--sparse-models", dest="sparse_models", nargs="+",
                      required=True, help="sparse models in embedding order (folders, or "
                      "legacy single files)")
    load.add_argument("--key-type", choices=("I64", "I32"), default="I64",
                      help="key width of legacy single-file sparse models (default I64)")
    add_table_args(load)
    load.add_argument("--replace", action="store_true",
                      help="delete what the tables hold first (a new snapshot, or data not "
                      "written by this tool)")
    load.add_argument("--chunk-mb", type=float, default=16,
                      help="payload per pipelined chunk, bounds memory (default 16)")
    load.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="progress bar (default: when stderr is a terminal)")
    add_connection_args(load)


def add_table_args(p: argparse.ArgumentParser) -> None:
    """Where the tables live, as an HPS configuration names them."""
    p.add_argument("--tables", nargs="+", default=None, metavar="NAME",
                   help="table names in embedding order, as HPS's embedding_table_names "
                   "(default: the embedding layers' top names)")
    p.add_argument("--partitions", type=int, default=16,
                   help="HPS's num_partitions (default 16)")
    p.add_argument("--key-bytes", type=int, choices=(4, 8), default=8,
                   help="stored key width: 8 (HPS supportlonglong, default) or 4")


def add_connection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Redis connection (HPS volatile_db fields)")
    g.add_argument("--user", default=None, help="Redis ACL user name (user_name)")
    g.add_argument("--password-file", default=None,
                   help="file holding the password; else the URL's, else the environment "
                   "variable HUGECTR2ONNX_REDIS_PASSWORD (never on the command line)")
    g.add_argument("--tls", action="store_true", help="TLS (implied by rediss://)")
    g.add_argument("--tls-ca", default=None, help="CA certificate file or directory")
    g.add_argument("--tls-cert", default=None, help="client certificate")
    g.add_argument("--tls-key", default=None, help="client private key")
    g.add_argument("--timeout", type=float, default=10.0,
                   help="seconds a Redis reply may take (default 10)")
    g.add_argument("--retry-budget", type=float, default=0.0,
                   help="seconds to keep retrying a failed Redis request (default 0: fail)")


def redis_options(args):
    from ..errors import InputFileError
    from ..redis.store import RedisOptions

    password = None
    if args.password_file:
        try:
            with open(args.password_file) as f:
                password = f.read().strip()
        except OSError as e:
            raise InputFileError(f"cannot read the password file: {e.strerror}",
                                 file=args.password_file)
    return RedisOptions(username=args.user, password=password, tls=args.tls,
                        ca_certificate=args.tls_ca, client_certificate=args.tls_cert,
                        client_key=args.tls_key, timeout=args.timeout,
                        retry_budget=args.retry_budget)


def run(args) -> int:
    from ..redis.load import load_tables

    report = load_tables(args.url, args.model, args.graph_config, args.sparse_models,
                         partitions=args.partitions, tables=args.tables,
                         key_bytes=args.key_bytes, key_type=args.key_type,
                         options=redis_options(args), chunk_bytes=int(args.chunk_mb * 2 ** 20),
                         replace=args.replace, progress=args.progress)
    print(report.summary())
    return 0

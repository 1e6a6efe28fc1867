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
    load.add_argument("--chunk-mb", type=float, default=32,
                      help="payload per pipelined chunk; memory is about three chunks "
                      "(default 32)")
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


# ---------------------------------------------------------------- predict's Redis and Ray options
def add_scoring_args(p: argparse.ArgumentParser) -> None:
    """``predict --embeddings redis://HOST:PORT/MODEL`` and ``--engine ray``."""
    g = p.add_argument_group("embeddings in Redis (HPS layout) and distributed scoring")
    g.add_argument("--embeddings", default=None, metavar="redis://HOST:PORT/MODEL",
                   help="look the embeddings up in Redis; --onnx is then the dense-only model "
                   "(converted without --convert-embedding) and --graph is required")
    g.add_argument("--graph", "--graph-config", dest="graph_config", default=None,
                   help="graph JSON (with --embeddings)")
    g.add_argument("--cache-keys", type=int, default=0,
                   help="in-process LRU cache of hot vectors, per table (default 0: off)")
    add_table_args(g)
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default) or ray: Ray Data actors, Parquet datasets")
    g.add_argument("--ray-address", default=None,
                   help="an existing Ray cluster ('auto', ray://HOST:10001); default: start a "
                   "local one")
    g.add_argument("--ray-cpus", type=int, default=None,
                   help="CPUs of the local Ray (default: all); one actor per CPU")
    add_connection_args(p)


def predict_with_engine(args):
    """The result of predict with Redis embeddings and/or on Ray; None: plain local predict."""
    from ..errors import UsageError

    if args.embeddings is None and args.engine == "local":
        return None
    redis = None
    if args.embeddings is not None:
        if not args.graph_config:
            raise UsageError("--embeddings needs --graph (the model's graph JSON)")
        from ..redis.store import split_model_url

        url, model = split_model_url(args.embeddings)
        redis = dict(graph_config=args.graph_config, url=url, model=model, tables=args.tables,
                     partitions=args.partitions, key_bytes=args.key_bytes,
                     options=redis_options(args), cache_keys=args.cache_keys)
    if args.engine == "ray":
        from ..ray_predict import predict_ray

        if args.fmt != "parquet":
            raise UsageError("--engine ray reads Parquet datasets (--format parquet)")
        if args.float_label_dense:
            raise UsageError("--float-label-dense is for Raw datasets, not Parquet")
        return predict_ray(args.onnx_model_path, args.data, batch_size=args.batch_size,
                           key_type=args.key_type, slot_size_array=args.slot_size_array,
                           num_samples=args.num_samples, redis=redis, address=args.ray_address,
                           num_cpus=args.ray_cpus)
    from ..predict import predict
    from ..redis.scorer import RedisScorer

    with RedisScorer(args.onnx_model_path, threads=args.threads or 0, **redis) as scorer:
        layout = scorer.layout(key_type=args.key_type, slot_size_array=args.slot_size_array)
        return predict(args.onnx_model_path, args.data, args.fmt, batch_size=args.batch_size,
                       num_samples=args.num_samples, float_label_dense=args.float_label_dense,
                       scorer=scorer, layout=layout, progress=args.progress)

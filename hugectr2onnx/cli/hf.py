"""``hugectr2onnx hf export|optimize|run``: Hugging Face transformers to ONNX, offline."""

from __future__ import annotations

import argparse
import json

HELP = "export, optimize (fp16) and run Hugging Face transformers as ONNX, offline"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="hf_command", required=True, metavar="{export,optimize,run}")

    e = sub.add_parser("export", help="export a local model to ONNX, validated against PyTorch",
                       description="Export a model (a local directory, or a name in the local "
                       "Hugging Face cache; nothing is downloaded) to ONNX with dynamic batch "
                       "and sequence axes, and check it against PyTorch on several shapes.")
    e.add_argument("model", help="model directory, or a model name in the local HF cache")
    e.add_argument("-o", "--output", required=True, help="ONNX file to write")
    e.add_argument("--task", default="auto", choices=("auto", "masked-lm", "feature-extraction",
                                                      "sequence-classification", "splade"),
                   help="auto (from the checkpoint's head), or splade: masked-LM with SPLADE's "
                   "max pooling in the graph, output sparse_vector [batch, vocab]")
    e.add_argument("--opset", type=int, default=None,
                   help="ONNX opset (default 17 for torchscript, 18 for dynamo)")
    e.add_argument("--exporter", default="auto", choices=("auto", "torchscript", "dynamo"),
                   help="auto: torchscript (its graph fuses best in optimize), falling back "
                   "to dynamo when tracing fails or does not validate")
    e.add_argument("--revision", default=None, help="revision of a cached model")
    e.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    e.add_argument("--rtol", type=float, default=1e-4,
                   help="tolerance relative to max|output| (default 1e-4)")
    e.add_argument("--external-data", action="store_true", default=None,
                   help="weights to OUTPUT.data even under 2 GB (always above)")
    e.add_argument("--force", action="store_true", help="write even if validation fails")
    e.set_defaults(hf_run=_export)

    o = sub.add_parser("optimize", help="fuse with ONNX Runtime's transformer optimizer",
                       description="Run ONNX Runtime's transformer optimizer with the model "
                       "type, heads and hidden size stored by export, optionally convert to "
                       "fp16, and validate against the input model before writing.")
    o.add_argument("input", help="ONNX model written by 'hf export'")
    o.add_argument("-o", "--output", required=True, help="optimized ONNX file to write")
    o.add_argument("--fp16", action="store_true",
                   help="fp16 weights and compute, fp32 inputs/outputs, overflow-prone ops "
                   "kept in fp32")
    o.add_argument("--int8", action="store_true",
                   help="also quantize the feed-forward MatMuls to int8 (dynamic, per-channel; "
                   "faster on CPU, approximate: validated by the cosine of pooled outputs, "
                   "at least --min-cosine)")
    o.add_argument("--min-cosine", type=float, default=None,
                   help="int8: smallest cosine of each sample's pooled output to the input "
                   "model's (default 0.99)")
    o.add_argument("--stats", action="store_true",
                   help="print nodes, inputs, outputs, initializers before and after")
    o.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance (default 1e-3, fp16 2e-2)")
    o.add_argument("--rtol", type=float, default=None,
                   help="tolerance relative to max|output| (default 1e-4, fp16 2e-2)")
    o.add_argument("--force", action="store_true",
                   help="write even if validation fails (with a warning)")
    o.set_defaults(hf_run=_optimize)

    r = sub.add_parser("run", help="run an exported model on texts",
                       description="SPLADE: top-k terms and weights; feature-extraction: "
                       "mean-pooled, L2-normalised embeddings; masked-lm: top-k tokens for "
                       "each mask token; sequence-classification: label probabilities.")
    r.add_argument("onnx_model", help="ONNX model written by 'hf export' or 'hf optimize'")
    r.add_argument("--model", default=None,
                   help="model directory or cached name for the tokenizer (default: the "
                   "source recorded in the ONNX metadata)")
    r.add_argument("--text", action="append", required=True, help="a text (repeatable)")
    r.add_argument("--top-k", type=int, default=20, help="terms or tokens shown (default 20)")
    r.add_argument("--max-length", type=int, default=None, help="truncate texts to N tokens")
    r.add_argument("--json", action="store_true", help="print JSON (full embeddings)")
    r.set_defaults(hf_run=_run)


def run(args) -> int:
    return args.hf_run(args)


def _export(args) -> int:
    from ..hf import export
    report = export(args.model, args.output, task=args.task, opset=args.opset,
                    exporter=args.exporter, revision=args.revision, atol=args.atol,
                    rtol=args.rtol, external_data=args.external_data, force=args.force)
    print(report.summary())
    return 0 if report.validation.ok else 1


def _optimize(args) -> int:
    from ..hf import FP16_TOLERANCE, FP32_TOLERANCE, INT8_MIN_COSINE, optimize
    default = FP16_TOLERANCE if args.fp16 else FP32_TOLERANCE
    tol = (default[0] if args.atol is None else args.atol,
           default[1] if args.rtol is None else args.rtol)
    report = optimize(args.input, args.output, fp16=args.fp16, int8=args.int8, tolerance=tol,
                      min_cosine=INT8_MIN_COSINE if args.min_cosine is None
                      else args.min_cosine, force=args.force)
    print(report.summary())
    if args.stats:
        print(report.stats_table())
    return 0 if report.validation.ok else 1


def _run(args) -> int:
    from ..hf.infer import predict, render
    meta, results = predict(args.onnx_model, args.text, model=args.model, top_k=args.top_k,
                            max_length=args.max_length)
    if args.json:
        print(json.dumps([{"text": r.text, "terms": r.terms, "masks": r.masks,
                           "embedding": None if r.embedding is None else r.embedding.tolist()}
                          for r in results], indent=1))
    else:
        print(f"task {meta.task}, model {meta.source_model}")
        print(render(meta, results))
    return 0

"""ONNX Runtime's transformer optimizer driven by the exported metadata, optional fp16, and a
validation of the result against the model it came from before anything is written."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from ..errors import AccuracyError, OutputError, UnsupportedModelError, UsageError
from .checks import SHAPES, ValidationReport, cosine_diff, diff, random_feeds
from .meta import read_metadata

# fp32: fusions reorder sums (LayerNorm, attention) -> float rounding only.
FP32_TOLERANCE = (1e-3, 1e-4)  # (atol, rtol): diff <= atol + rtol * max|reference|
# fp16: 11-bit mantissa, relative step 2**-11 ~ 4.9e-4 per rounding; a 6-12 layer encoder
# accumulates a few hundred of them on outputs of order 1-20.
FP16_TOLERANCE = (2e-2, 2e-2)
# int8 (opt-in): 8-bit weights and activations move every element by up to a few percent of
# its range, so an elementwise tolerance cannot tell a good int8 model from a broken one; the
# criterion is the direction of each sample's pooled output (what retrieval uses), as cosine.
INT8_MIN_COSINE = 0.99
# ... and for SPLADE, the top terms of each sample must stay the same (run's default top-k).
SPLADE_TOP_K = 20
# MatMuls around these ops are the feed-forward block's two projections (2/3 of the FLOPs).
GELU_OPS = ("BiasGelu", "Gelu", "FastGelu")

# Ops whose intermediate values leave fp16's range (max 65504, smallest normal 6.1e-5):
# squares and their sums in unfused LayerNorm/L2 norms, exp/log, and SPLADE's log1p pooling.
FP16_BLOCKED_OPS = ("Pow", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "Sqrt",
                    "Reciprocal", "Exp", "Log", "Softplus", "Erf", "LayerNormalization",
                    "SimplifiedLayerNormalization")


@dataclass
class GraphStats:
    nodes: int
    inputs: int
    outputs: int
    initializers: int
    ops: Counter

    @classmethod
    def of(cls, model: onnx.ModelProto) -> "GraphStats":
        g = model.graph
        return cls(len(g.node), len(g.input), len(g.output), len(g.initializer),
                   Counter(n.op_type for n in g.node))


@dataclass
class OptimizeReport:
    path: Path | None
    before: GraphStats
    after: GraphStats
    fused: dict[str, int]
    fp16: bool
    validation: ValidationReport
    int8: int = 0  # MatMuls quantized to int8
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def stats_table(self) -> str:
        rows = [("nodes", self.before.nodes, self.after.nodes),
                ("inputs", self.before.inputs, self.after.inputs),
                ("outputs", self.before.outputs, self.after.outputs),
                ("initializers", self.before.initializers, self.after.initializers)]
        lines = [f"  {'':14}{'before':>8}{'after':>8}"]
        lines += [f"  {name:14}{a:>8}{b:>8}" for name, a, b in rows]
        fused = ", ".join(f"{k} {v}" for k, v in sorted(self.fused.items()) if v)
        lines.append(f"  fused: {fused or 'nothing'}")
        return "\n".join(lines)

    def summary(self) -> str:
        kind = " (fp16)" if self.fp16 else f" (int8: {self.int8} MatMuls)" if self.int8 else ""
        head = (f"optimized{kind}: {self.before.nodes} -> "
                f"{self.after.nodes} nodes" + (f" -> {self.path}" if self.path else ""))
        return "\n".join([head, *self.notes, self.validation.summary()])


def optimize(model: str | os.PathLike, output: str | os.PathLike, *, fp16: bool = False,
             int8: bool = False, tolerance: tuple[float, float] | None = None,
             min_cosine: float = INT8_MIN_COSINE, force: bool = False) -> OptimizeReport:
    """Fuse ``model`` (an export of :func:`hugectr2onnx.hf.export`) into ``output``.

    The result is compared with the original on the export's validation shapes; over the
    tolerance (FP16_TOLERANCE or FP32_TOLERANCE unless given) AccuracyError is raised and
    nothing is written, unless ``force``, which writes and warns on stderr. ``int8`` also
    quantizes the feed-forward MatMuls (dynamic, per-channel int8 weights), checked by the
    cosine of each sample's pooled output instead (at least ``min_cosine``)."""
    from onnxruntime.transformers.optimizer import optimize_model

    if fp16 and int8:
        raise UsageError("choose fp16 or int8, not both")
    model, output = Path(model), Path(output)
    meta = read_metadata(model)
    before = GraphStats.of(onnx.load(str(model), load_external_data=False))
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    try:  # by path: the optimizer loads external data itself
        opt = optimize_model(str(model), model_type=meta.ort_model_type,
                             num_heads=meta.num_heads, hidden_size=meta.hidden_size, opt_level=0)
    except Exception as e:  # the optimizer's own failure on a graph it does not expect
        raise UnsupportedModelError(f"ONNX Runtime's transformer optimizer failed: "
                                    f"{type(e).__name__}: {' '.join(str(e).split())[:300]}",
                                    file=str(model)) from None
    fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if fp16:
        opt.convert_float_to_float16(keep_io_types=True, op_block_list=list(FP16_BLOCKED_OPS))
    result = opt.model
    quantized = 0
    if int8:
        result, quantized = quantize_feed_forward(result, output.parent)
    meta.write(result)  # the optimizer keeps metadata_props; rewrite them to be certain
    after = GraphStats.of(result)

    if output.is_dir():
        raise OutputError("is a directory", file=str(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".hf-optimize-", dir=output.parent))
    try:
        staged = tmp / output.name
        external = sum(t.ByteSize() for t in result.graph.initializer) > 2 ** 31 - (64 << 20)
        onnx.save_model(result, str(staged), save_as_external_data=external,
                        all_tensors_to_one_file=True, location=output.name + ".data")
        del result
        atol, rtol = tolerance or (FP16_TOLERANCE if fp16 else FP32_TOLERANCE)
        validation = validate_against_onnx(model, staged, meta, atol, rtol,
                                           min_cosine if int8 else None)
        report = OptimizeReport(output, before, after, fused, fp16, validation, int8=quantized)
        if not validation.ok:
            if not force:
                raise AccuracyError("the optimized model differs from the original beyond the "
                                    "tolerance; nothing written (--force writes it anyway)\n"
                                    + validation.summary(), file=str(output))
            report.forced = True
            print(f"WARNING: writing {output} although it FAILED validation (forced)\n"
                  + validation.summary(), file=sys.stderr)
        _replace(staged, output, external)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    validation.candidate = str(output)
    return report


def quantize_feed_forward(model: onnx.ModelProto, workdir: Path) -> tuple[onnx.ModelProto, int]:
    """ONNX Runtime's dynamic quantization of the feed-forward blocks' MatMuls (MatMul, Gelu,
    MatMul), int8 weights per output channel. Attention, embeddings and
    task heads stay fp32: quantizing them too costs accuracy (all-MiniLM-L6-v2, per-channel:
    cosine 0.992 against 0.993 on real sentences, 0.981 against 0.989 on random tokens)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    made_by = {o: n for n in model.graph.node for o in n.output}
    nodes = []
    for second in model.graph.node:  # MatMul <- Gelu <- MatMul: a feed-forward block
        gelu = made_by.get(second.input[0]) if second.op_type == "MatMul" else None
        first = made_by.get(gelu.input[0]) if gelu and gelu.op_type in GELU_OPS else None
        if first is not None and first.op_type == "MatMul":
            nodes += [first.name, second.name]
    if not nodes:
        raise UnsupportedModelError("--int8: no feed-forward block (MatMul, Gelu, MatMul) "
                                    "found after fusion")
    if not any(o.domain == "com.microsoft" for o in model.opset_import):  # for shape inference
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    tmp = Path(tempfile.mkdtemp(prefix=".hf-int8-", dir=workdir))
    logging.disable(logging.WARNING)  # its root-logger advice to run pre-processing
    try:
        quantize_dynamic(model, tmp / "q.onnx", op_types_to_quantize=["MatMul"],
                         nodes_to_quantize=nodes, per_channel=True,
                         weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return onnx.load(str(tmp / "q.onnx")), len(nodes)
    except Exception as e:  # e.g. a model over protobuf's 2 GB, which it reloads in memory
        raise UnsupportedModelError(f"ONNX Runtime's int8 quantization failed: "
                                    f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
                                    ) from None
    finally:
        logging.disable(logging.NOTSET)
        shutil.rmtree(tmp, ignore_errors=True)


def validate_against_onnx(reference: Path, candidate: Path, meta, atol: float, rtol: float,
                          min_cosine: float | None = None) -> ValidationReport:
    """Both models in ONNX Runtime, with its own graph rewrites off for the reference;
    elementwise tolerance, or the pooled cosine when ``min_cosine`` is given (int8)."""
    from .session import open_session
    ref = open_session(reference, optimize=False)
    cand = open_session(candidate)
    names = [o.name for o in ref.get_outputs()]
    report = ValidationReport(str(reference), str(candidate))
    for batch, seq in meta.shapes(SHAPES):
        feeds = random_feeds(meta.input_names, meta.vocab_size, meta.type_vocab_size, batch,
                             seq, seed=1, special_ids=meta.special_token_ids)
        for name, r, c in zip(names, ref.run(names, feeds), cand.run(names, feeds)):
            report.diffs.append(diff(name, r, c, atol, rtol) if min_cosine is None else
                                cosine_diff(name, r, c, feeds["attention_mask"], min_cosine,
                                            SPLADE_TOP_K if meta.task == "splade" else 0))
    return report


def _replace(staged: Path, output: Path, external: bool) -> None:
    data = staged.with_name(staged.name + ".data")
    stale = output.with_name(output.name + ".data")
    try:
        if external:
            os.replace(data, stale)
        elif stale.exists():
            stale.unlink()
        os.replace(staged, output)
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror}", file=str(output)) from None

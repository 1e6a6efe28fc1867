"""Export a Hugging Face model to ONNX, validated against PyTorch before it is written.

Two exporters: ``torchscript`` (torch.jit tracing) and ``dynamo`` (torch.export). With
torch 2.13 and transformers 5 both are exact in fp32, but only the TorchScript graph has the
operator pattern that ONNX Runtime's transformer optimizer fuses into Attention and
EmbedLayerNormalization (all-MiniLM-L6-v2: 516 -> 46 nodes, against 237 -> 183 with no
attention fused for the dynamo graph), so ``auto`` uses TorchScript and falls back to dynamo
when tracing fails or does not validate. See docs/transformers.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AccuracyError, OutputError, UnsupportedModelError, UsageError
from . import source as hf_source
from .checks import SHAPES, ValidationReport, diff, random_feeds
from .meta import HfMetadata

EXPORTERS = ("auto", "torchscript", "dynamo")
TWO_GB = 2 ** 31
PROTO_HEADROOM = 64 << 20  # graph and metadata bytes besides the weights
PROBE_BATCH, PROBE_SEQ = 2, 11  # sizes distinct from every hidden dimension


@dataclass
class ExportReport:
    path: Path
    task: str
    exporter: str
    opset: int
    inputs: list[str]
    outputs: list[str]
    external_data: bool
    validation: ValidationReport
    metadata: HfMetadata
    seconds: float
    attempts: list[str] = field(default_factory=list)  # exporters that failed, and why

    def summary(self) -> str:
        lines = [f"exported {self.metadata.source_model} ({self.metadata.model_type}, task "
                 f"{self.task}) with the {self.exporter} exporter, opset {self.opset}, in "
                 f"{self.seconds:.1f} s -> {self.path}"
                 + (" (+ external data)" if self.external_data else ""),
                 f"  inputs: {', '.join(self.inputs)}; outputs: {', '.join(self.outputs)}"]
        lines += [f"  {a}" for a in self.attempts]
        lines.append(self.validation.summary())
        return "\n".join(lines)


def _stage(message: str) -> None:
    """Progress for a minute-long export: one line per stage, only on a terminal."""
    if getattr(sys.stderr, "isatty", lambda: False)():
        print(f"hugectr2onnx hf: {message}...", file=sys.stderr, flush=True)


def export(model: str | os.PathLike, output: str | os.PathLike, *, task: str = "auto",
           opset: int | None = None, exporter: str = "auto", revision: str | None = None,
           atol: float = 1e-4, rtol: float = 1e-4, external_data: bool | None = None,
           force: bool = False) -> ExportReport:
    """Export ``model`` (a local directory or a cached name) to ``output``.

    The ONNX is checked against PyTorch on several (batch, sequence) shapes; a difference over
    ``atol + rtol * max|output|`` raises AccuracyError and writes nothing, unless ``force``.
    ``external_data`` None: weights go to ``<output>.data`` only when they pass 2 GB."""
    if exporter not in EXPORTERS:
        raise UsageError(f"unknown exporter {exporter!r}; choose from {', '.join(EXPORTERS)}")
    start = time.perf_counter()
    src = hf_source.resolve(model, revision)
    _stage(f"loading {src.path}")
    config = hf_source.load_config(src)
    task = hf_source.resolve_task(config, task)
    tokenizer = hf_source.load_tokenizer(src)
    torch_model, missing = hf_source.load_model(src, task)
    if missing and not force:
        raise UnsupportedModelError(
            f"the checkpoint has no trained weights for the {task} head ({len(missing)} "
            f"missing, e.g. {sorted(missing)[0]}): they would be random; choose the task the "
            "checkpoint was trained for, or --force", file=str(src.path))
    meta_base = _metadata(src, config, tokenizer, task)

    output = Path(output)
    if output.is_dir():
        raise OutputError("is a directory", file=str(output))
    output.parent.mkdir(parents=True, exist_ok=True)
    order = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    attempts: list[str] = []
    for i, name in enumerate(order):
        last = i == len(order) - 1
        tmp = Path(tempfile.mkdtemp(prefix=".hf-export-", dir=output.parent))
        _stage(f"exporting with {name}, then validating against PyTorch")
        try:
            try:
                result = _export_once(torch_model, tokenizer, config, task, name, opset, tmp,
                                      output.name, meta_base, external_data, atol, rtol)
            except AccuracyError:
                raise
            except Exception as e:  # an exporter's own failure: try the next, else say which
                if isinstance(e, UnsupportedModelError) or last:
                    detail = " ".join(str(e).split())[:300]
                    raise UnsupportedModelError(
                        f"the {name} exporter failed: {type(e).__name__}: {detail}"
                        + "".join(f"; {a}" for a in attempts), file=str(src.path)) from None
                attempts.append(f"{name} exporter failed ({type(e).__name__}); fell back")
                continue
            inputs, outputs, used_opset, is_external, validation, meta = result
            if not validation.ok and not force:
                if not last:
                    attempts.append(f"{name} export did not validate (max abs diff "
                                    f"{validation.max_abs_diff:.3g}); fell back")
                    continue
                raise AccuracyError("the ONNX model differs from PyTorch; nothing written "
                                    "(--force writes it anyway)\n" + validation.summary(),
                                    file=str(output))
            _move_into_place(tmp, output)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        validation.candidate = str(output)
        if missing:
            attempts.insert(0, f"WARNING: {len(missing)} weights missing from the checkpoint "
                               "were randomly initialised (forced)")
        return ExportReport(output, task, name, used_opset, inputs, outputs, is_external,
                            validation, meta, time.perf_counter() - start, attempts)
    raise AssertionError("unreachable")  # pragma: no cover


def _metadata(src, config, tokenizer, task: str) -> dict:
    special = sorted({int(i) for i in getattr(tokenizer, "all_special_ids", []) if i is not None})
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None)
    if not hidden or not heads:
        raise UnsupportedModelError("config.json names no hidden size or attention head count",
                                    file=str(src.path / "config.json"))
    labels = getattr(config, "id2label", None) if task == "sequence-classification" else None
    max_pos = int(getattr(config, "max_position_embeddings", 0) or 0)
    if max_pos and getattr(config, "pad_token_id", None) is not None and \
            config.model_type in ("roberta", "xlm-roberta", "camembert"):
        max_pos -= config.pad_token_id + 1  # positions start after the padding index
    return dict(model_type=config.model_type, num_heads=int(heads), hidden_size=int(hidden),
                task=task, source_model=src.name, source_revision=src.revision,
                vocab_size=int(config.vocab_size),
                type_vocab_size=int(getattr(config, "type_vocab_size", 0) or 0),
                id2label=json.dumps({str(k): v for k, v in labels.items()}) if labels else "",
                special_ids=",".join(map(str, special)), max_sequence=max_pos)


def _export_once(torch_model, tokenizer, config, task, exporter, opset, tmp: Path, filename,
                 meta_base, external_data, atol, rtol):
    import onnx
    import torch

    from .wrapper import ExportWrapper, input_names

    names = input_names(torch_model, tokenizer)
    wrapper = ExportWrapper(torch_model, names, task).eval()
    special = tuple(int(i) for i in meta_base["special_ids"].split(",") if i)
    probe = random_feeds(names, meta_base["vocab_size"], meta_base["type_vocab_size"],
                         PROBE_BATCH, PROBE_SEQ, special_ids=special)
    args = tuple(torch.from_numpy(probe[n]) for n in names)
    try:
        out_names = wrapper.probe(args)
    except KeyError as e:
        raise UnsupportedModelError(f"the model has no {e} output for task {task}") from None
    with torch.no_grad():
        probe_out = wrapper(*args)
    raw = tmp / "raw" / filename
    raw.parent.mkdir()
    chatter = io.StringIO()  # the exporters print IR dumps on failure; the error says enough
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(chatter), \
            contextlib.redirect_stderr(chatter):
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            opset = opset or 17
            axes = {n: {0: "batch", 1: "sequence"} for n in names}
            for name, t in zip(out_names, probe_out):
                axes[name] = {i: ("batch", "sequence")[i] for i in range(min(t.dim(), 2))
                              if t.shape[i] == (PROBE_BATCH, PROBE_SEQ)[i]}
            torch.onnx.export(wrapper, args, str(raw), dynamo=False, input_names=names,
                              output_names=out_names, dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True)
        else:
            opset = opset or 18
            batch = torch.export.Dim("batch", min=1, max=65536)
            seq = torch.export.Dim("sequence", min=1, max=meta_base["max_sequence"] or 65536)
            shapes = tuple({0: batch, 1: seq} for _ in names)
            program = torch.onnx.export(wrapper, args, dynamo=True, input_names=names,
                                        output_names=out_names, dynamic_shapes=(shapes,),
                                        opset_version=opset, verbose=False, optimize=True)
            program.save(str(raw), external_data=True)
    model = onnx.load(str(raw))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    meta = HfMetadata(**meta_base, exporter=exporter, inputs=",".join(names),
                      outputs=",".join(out_names))
    meta.write(model)
    nbytes = sum(_tensor_bytes(t) for t in model.graph.initializer)
    external = bool(external_data) if external_data is not None else (
        nbytes + PROTO_HEADROOM > TWO_GB)
    final = tmp / filename
    if external:
        onnx.save_model(model, str(final), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=filename + ".data",
                        size_threshold=1024)
    else:
        onnx.save_model(model, str(final))
    del model
    validation = validate_against_torch(wrapper, final, names, out_names, meta, atol, rtol)
    return names, out_names, opset, external, validation, meta


def _tensor_bytes(t) -> int:
    import onnx
    n = int(np.prod(t.dims)) if t.dims else 1
    return n * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def validate_against_torch(wrapper, path: Path, names, out_names, meta: HfMetadata,
                           atol: float, rtol: float) -> ValidationReport:
    """ONNX Runtime against the PyTorch module on each shape of SHAPES."""
    import torch

    from .session import open_session
    session = open_session(path)
    report = ValidationReport("PyTorch", str(path))
    for batch, seq in meta.shapes(SHAPES):
        feeds = random_feeds(names, meta.vocab_size, meta.type_vocab_size, batch, seq,
                             special_ids=meta.special_token_ids)
        with torch.no_grad():
            ref = wrapper(*(torch.from_numpy(feeds[n]) for n in names))
        got = session.run(out_names, feeds)
        for name, r, g in zip(out_names, ref, got):
            report.diffs.append(diff(name, r.float().numpy(), g, atol, rtol))
    return report


def _move_into_place(tmp: Path, output: Path) -> None:
    """Weights first, then the graph that names them: a reader never sees a graph whose data
    is missing."""
    data = tmp / (output.name + ".data")
    stale = output.with_name(output.name + ".data")
    try:
        if data.exists():
            os.replace(data, stale)
        elif stale.exists():
            stale.unlink()
        os.replace(tmp / output.name, output)
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror}", file=str(output)) from None

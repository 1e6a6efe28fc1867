"""Shared fixtures: build HugeCTR artifacts with our writer, convert, compare with numpy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from hugectr2onnx import converter
from hugectr2onnx.loader import load_model
from hugectr2onnx.hugectr.writer import ModelBuilder, save_model
from hugectr2onnx.runners import OrtRunner, ReferenceRunner, compare_all, tensor_names
from hugectr2onnx.verify import compare, random_feeds

# intermediates can be large (cross networks, sums over slots): atol plus a relative part
INTERMEDIATE_RTOL = 1e-5


class Roundtrip:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.count = 0

    def __call__(self, builder: ModelBuilder, *, batch: int = 16, convert_embedding: bool = False,
                 atol: float = 1e-5, seed: int = 0, feeds: dict | None = None, tables=None,
                 save_kw: dict | None = None, load_kw: dict | None = None, **convert_kw):
        """Write, convert with the drop-in API, check the ONNX, and compare with the reference.

        Returns (report, graph, onnx_path, artifacts)."""
        self.count += 1
        d = self.tmp_path / f"m{self.count}"
        art = save_model(builder, d, seed=seed, tables=tables, **(save_kw or {}))
        out = d / "model.onnx"
        converter.convert(str(out), art.graph_config, art.dense_model, convert_embedding,
                          art.sparse_models if convert_embedding else None, art.ntp_file,
                          **convert_kw)
        onnx.checker.check_model(str(out), full_check=True)
        inferred = onnx.shape_inference.infer_shapes(onnx.load(str(out)), strict_mode=True)
        assert all(o.type.tensor_type.HasField("shape") for o in inferred.graph.output)
        graph = load_model(art.graph_config, art.dense_model,
                           art.sparse_models if convert_embedding else None, art.ntp_file,
                           **(load_kw or {}))
        pad = convert_kw.get("padding_key", -1)
        if feeds is None:
            feeds = random_feeds(graph, batch, convert_embedding=convert_embedding, seed=seed,
                                 padding_key=pad)
        report = compare(graph, out, feeds, padding_key=pad, num_gpus=convert_kw.get("num_gpus"),
                         atol=atol)
        assert report.outputs, "no outputs compared"
        assert report.ok, report.summary()
        self.compare_intermediates(graph, out, feeds, pad, convert_kw.get("num_gpus"), atol)
        return report, graph, out, art

    @staticmethod
    def compare_intermediates(graph, onnx_path, feeds, padding_key, num_gpus, atol):
        """Every HugeCTR tensor ONNX Runtime still has (fused ones are gone), by name, against
        the reference: a final InnerProduct and sigmoid would shrink a layer's error."""
        ref = ReferenceRunner(graph, padding_key=padding_key, num_gpus=num_gpus).run(feeds)
        ort_values = OrtRunner(onnx_path, expose=tensor_names(graph)).run(feeds)
        diffs = [d for _, d in compare_all(graph, ref, ort_values, atol=atol,
                                           rtol=INTERMEDIATE_RTOL)]
        assert diffs, "no tensor compared"  # intermediates may all be fused away
        bad = [d for d in diffs if not d.ok]
        assert not bad, "; ".join(f"{d.name}: max |diff| {d.max_abs:.3g}, max rel "
                                  f"{d.max_rel:.3g}" for d in bad)


@pytest.fixture
def roundtrip(tmp_path):
    return Roundtrip(tmp_path)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def single_input_model(dense_dim: int, *layers, label_dim: int = 1) -> ModelBuilder:
    """A dense-only model: ``layers`` are (type, bottom, top, params) after the Data block;
    a final InnerProduct to width 1 + BCE loss is added when the last top is not a loss."""
    b = ModelBuilder().input(label_dim=label_dim, dense_dim=dense_dim)
    for t, bottom, top, params in layers:
        b.dense(t, bottom, top, **params)
    return b

"""Typed errors, no partial outputs, and the thin CLI over the API."""

from __future__ import annotations

import json

import onnx
import pytest

from hugectr2onnx import hf
from hugectr2onnx.cli import main
from hugectr2onnx.errors import (AccuracyError, InputFileError, ModelNotFoundError,
                                 UnsupportedModelError, UsageError)


def test_missing_model_is_a_typed_error_and_writes_nothing(tmp_path):
    with pytest.raises(ModelNotFoundError, match="local Hugging Face cache"):
        hf.export("no-such-org/no-such-model", tmp_path / "m.onnx")
    with pytest.raises(ModelNotFoundError, match="not a model directory"):
        hf.export(str(tmp_path / "absent"), tmp_path / "m.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        hf.export(tmp_path / "empty", tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_head_missing_from_checkpoint_is_refused(tiny_models, tmp_path):
    """A bare encoder exported as SPLADE would pool a randomly initialised MLM head."""
    with pytest.raises(UnsupportedModelError, match="no trained weights for the splade head"):
        hf.export(tiny_models("bert"), tmp_path / "s.onnx", task="splade")
    assert not list(tmp_path.iterdir())


def test_optimize_refuses_a_model_not_exported_here(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "plain.onnx"))
    with pytest.raises(UsageError, match="metadata_props lack"):
        hf.optimize(tmp_path / "plain.onnx", tmp_path / "o.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf")
    with pytest.raises(InputFileError):
        hf.optimize(tmp_path / "junk.onnx", tmp_path / "o.onnx")
    assert not (tmp_path / "o.onnx").exists()


def test_optimize_refuses_to_write_beyond_tolerance_unless_forced(tiny_models, tmp_path, capsys):
    hf.export(tiny_models("bert-mlm"), tmp_path / "m.onnx")
    with pytest.raises(AccuracyError, match="nothing written"):
        hf.optimize(tmp_path / "m.onnx", tmp_path / "h.onnx", fp16=True, tolerance=(0.0, 0.0))
    assert not (tmp_path / "h.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hf-")]  # temp dir gone
    rep = hf.optimize(tmp_path / "m.onnx", tmp_path / "h.onnx", fp16=True, tolerance=(0.0, 0.0),
                      force=True)
    assert rep.forced and not rep.validation.ok and (tmp_path / "h.onnx").exists()
    assert "FAILED validation" in capsys.readouterr().err


def test_export_refuses_when_the_tolerance_is_exceeded(tiny_models, tmp_path):
    with pytest.raises(AccuracyError, match="differs from PyTorch"):
        hf.export(tiny_models("bert-mlm"), tmp_path / "m.onnx", exporter="torchscript",
                  atol=0.0, rtol=0.0)
    assert not list(tmp_path.iterdir())


def test_cli_three_commands(tiny_models, tmp_path, capsys):
    d = tiny_models("bert-mlm")
    m, o = str(tmp_path / "m.onnx"), str(tmp_path / "o.onnx")
    assert main(["hf", "export", str(d), "-o", m, "--task", "splade"]) == 0
    out = capsys.readouterr().out
    assert "sparse_vector" in out and "max abs diff" in out and "tolerance" in out
    assert main(["hf", "optimize", m, "-o", o, "--fp16", "--stats"]) == 0
    out = capsys.readouterr().out
    for row in ("nodes", "inputs", "outputs", "initializers", "fused:", "before", "after"):
        assert row in out
    assert main(["hf", "run", o, "--model", str(d), "--text", "the cat sat", "--text",
                 "a red dog", "--top-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "task splade" in out and "'the cat sat'" in out and "'a red dog'" in out
    _, results = hf.predict(o, ["the cat sat"], top_k=5)
    assert all(f"{t} {w:.3f}" in out for t, w in results[0].terms)
    assert main(["hf", "run", o, "--text", "the cat sat", "--top-k", "5", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["text"] == "the cat sat"
    assert [tuple(t) for t in record["terms"]] == [(t, w) for t, w in results[0].terms]


def test_cli_errors_are_one_line_with_exit_codes(tmp_path, capsys):
    assert main(["hf", "export", "missing/model", "-o", str(tmp_path / "m.onnx")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("hugectr2onnx: error: missing/model:") and err.count("\n") == 1
    assert main(["hf", "run", str(tmp_path / "none.onnx"), "--text", "x"]) == 3
    with pytest.raises(SystemExit):
        main(["hf", "export", "m", "-o", "x.onnx", "--task", "nonsense"])

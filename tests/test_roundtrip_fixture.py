"""The roundtrip fixture compares every intermediate tensor by name, not only predictions."""

import numpy as np
import pytest

from hugectr2onnx.hugectr.writer import ModelBuilder
from hugectr2onnx.layers.layer_norm import LayerNorm


def _model():
    return (ModelBuilder().input(dense_dim=5)
            .dense("InnerProduct", "dense", "fc1", fc_param={"num_output": 6})
            .dense("LayerNorm", "fc1", "ln", ln_param={"eps": 1e-3})
            .dense("InnerProduct", "ln", "fc2", fc_param={"num_output": 1})
            .dense("BinaryCrossEntropyLoss", ["fc2", "label"], "loss"))


def test_a_layer_error_hidden_by_the_head_is_caught(roundtrip, monkeypatch):
    """LayerNorm off by 4e-5 in ONNX: after an InnerProduct to width 1 and a sigmoid the
    prediction moves by less than atol, the 'ln' tensor does not."""
    emit = LayerNorm.to_onnx

    def off(self, layer, g):
        top = layer.tops[0]
        layer.tops[0] = f"{top}_exact"
        try:
            emit(self, layer, g)
        finally:
            layer.tops[0] = top
        g.node("Add", [f"{top}_exact", g.const(np.float32(4e-5))], top)

    monkeypatch.setattr(LayerNorm, "to_onnx", off)
    with pytest.raises(AssertionError, match=r"ln: max \|diff\| 4") as info:
        roundtrip(_model(), atol=3e-5)
    assert "label" not in str(info.value).split("ln: max")[0]  # the prediction was close


def test_intermediates_of_a_correct_model_pass(roundtrip):
    roundtrip(_model())

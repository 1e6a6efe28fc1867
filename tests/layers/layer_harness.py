"""Run one layer handler in isolation: its ONNX emission in onnxruntime, and its reference.

For layers whose inputs a HugeCTR graph built with ModelBuilder cannot easily produce
(4-D attention tensors, masks) or whose outputs cannot reach a loss layer.

    handler, layer = make_layer("Softmax", {"factor": 0.5}, [(B, 2, 3, 3), (B, 1, 3, 3)])
    got = run_layer(handler, layer, [x, mask])          # onnxruntime
    want = handler.reference(layer, [x, mask])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hugectr2onnx.ir import Layer, Shape
from hugectr2onnx.layers.base import LayerHandler, Params, default_registry
from hugectr2onnx.onnx_backend.emitter import OnnxEmitter
from hugectr2onnx.onnx_backend.export import MIN_IR_VERSION, _dims


def make_layer(layer_type: str, block: dict[str, Any] | None, in_shapes: Sequence[Shape], *,
               bottoms: Sequence[str] | None = None, tops: Sequence[str] | None = None,
               n_tops: int = 1) -> tuple[LayerHandler, Layer]:
    """Parse ``block`` (the JSON keys besides type/bottom/top) and infer the output shapes."""
    handler = default_registry().get(layer_type)
    assert handler is not None, f"no handler for {layer_type}"
    bottoms = list(bottoms or [f"in{i}" for i in range(len(in_shapes))])
    tops = list(tops or [f"out{i}" for i in range(n_tops)])
    raw = {"type": layer_type, "bottom": bottoms if len(bottoms) > 1 else bottoms[0],
           "top": tops if len(tops) > 1 else tops[0], **(block or {})}
    layer = Layer(0, layer_type, bottoms, tops, raw=raw)
    layer.params = handler.parse(Params(raw), layer)
    layer.in_shapes = [tuple(s) for s in in_shapes]
    out = handler.infer(layer)
    layer.out_shapes = list(out) + [out[0]] * (len(tops) - len(out))
    return handler, layer


def _value_info(name: str, shape: Shape, dtype) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)),
                                         _dims(shape))


def build_layer_model(handler: LayerHandler, layer: Layer, dtypes: Sequence = (),
                      opset: int = 17) -> onnx.ModelProto:
    """A model whose inputs are ``layer.bottoms`` and outputs ``layer.tops``; checked strictly."""
    g = OnnxEmitter(opset)
    inputs, seen = [], set()
    for i, (name, shape) in enumerate(zip(layer.bottoms, layer.in_shapes)):
        if name in seen:  # the same tensor passed twice (e.g. SequenceMask from = to)
            continue
        seen.add(name)
        inputs.append(_value_info(name, shape, dtypes[i] if i < len(dtypes) else np.float32))
        g.reserve(name)
    handler.to_onnx(layer, g)
    outputs = [_value_info(t, s, np.float32) for t, s in zip(layer.tops, layer.out_shapes)]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in g.initializers.items()]
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(helper.make_graph(g.nodes, "layer", inputs, outputs, inits),
                              opset_imports=opsets,
                              ir_version=max(MIN_IR_VERSION, helper.find_min_ir_version_for(opsets)))
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def run_layer(handler: LayerHandler, layer: Layer, inputs: Sequence[np.ndarray],
              opset: int = 17) -> list[np.ndarray]:
    """Emit the layer alone, run it in onnxruntime on ``inputs`` (one per bottom)."""
    import onnxruntime as ort

    model = build_layer_model(handler, layer, [np.asarray(x).dtype for x in inputs], opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = dict(zip(layer.bottoms, inputs))
    return sess.run(list(layer.tops), feeds)


def check_layer(handler: LayerHandler, layer: Layer, inputs: Sequence[np.ndarray], *,
                opset: int = 17, atol: float = 1e-5) -> list[np.ndarray]:
    """onnxruntime against the numpy reference (shapes and values); returns ORT's outputs."""
    got = run_layer(handler, layer, inputs, opset)
    want = handler.reference(layer, list(inputs))
    assert len(got) == len(want) == len(layer.tops)
    for name, g_, w in zip(layer.tops, got, want):
        assert g_.shape == np.asarray(w).shape, f"{name}: {g_.shape} vs {np.asarray(w).shape}"
        np.testing.assert_allclose(g_, w, rtol=0, atol=atol, err_msg=name)
    return got

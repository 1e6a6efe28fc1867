"""Per-layer cases shared by the trainable backends' layer tests: every handler with a
JSON block, input shapes and input kinds, and ``build`` (random weights in HugeCTR's
layout and inputs). Used by tests/torch/test_torch_layers.py and tests/tf/test_tf_layers.py."""

from __future__ import annotations

import numpy as np

from layer_harness import make_layer
from hugectr2onnx.ir import B, concrete_shape

BATCH = 4
X, MASK, LENGTH, LABEL = "x", "mask", "length", "label"
MHA = "MultiHeadAttention"

# (type, JSON block, input shapes, input kinds (default all X), number of tops)
CASES = [
    ("ReLU", {}, [(B, 5)], None, 1),
    ("Sigmoid", {}, [(B, 5)], None, 1),
    ("ELU", {"elu_param": {"alpha": 0.7}}, [(B, 5)], None, 1),
    ("Dropout", {"rate": 0.3}, [(B, 5)], None, 1),
    ("Cast", {}, [(B, 5)], None, 1),
    ("BatchNorm", {"bn_param": {"factor": 0.9, "eps": 1e-5}}, [(B, 5)], None, 1),
    ("Concat", {}, [(B, 3), (B, 4)], None, 1),
    ("Concat", {"axis": 1}, [(B, 2, 3), (B, 3, 3)], None, 1),
    ("Concat", {"axis": 2}, [(B, 2, 3), (B, 2, 4)], None, 1),
    ("Add", {}, [(B, 4)] * 3, None, 1),
    ("Sub", {}, [(B, 4)] * 2, None, 1),
    ("ElementwiseMultiply", {}, [(B, 2, 3)] * 3, None, 1),
    ("FmOrder2", {"out_dim": 3}, [(B, 12)], None, 1),
    ("FusedInnerProduct", {"fc_param": {"num_output": 4}}, [(B, 5)], None, 1),
    ("FusedInnerProduct", {"fc_param": {"num_output": 4}, "position": "Tail",
                           "activation": "None"}, [(B, 5)] * 4, None, 1),
    ("FusedReshapeConcat", {}, [(B, 3, 2), (B, 3, 4)], None, 2),
    ("FusedReshapeConcatGeneral", {}, [(B, 3, 2), (B, 3, 4)], None, 1),
    ("Gather", {"indices": [2, 0, 2]}, [(B, 4)], None, 1),
    ("GRU", {"gru_param": {"num_output": 3, "batchsize": 2, "SeqLength": 4, "vector_size": 5}},
     [(8, 5)], None, 1),
    ("InnerProduct", {"fc_param": {"num_output": 4}}, [(B, 5)], None, 1),
    ("InnerProduct", {"fc_param": {"num_output": 4}}, [(B, 3, 5)], None, 1),
    ("Interaction", {}, [(B, 4), (B, 3, 4)], None, 1),
    ("Interaction", {}, [(B, 4), (B, 3, 4)], None, 2),
    ("LayerNorm", {"ln_param": {"eps": 1e-5}}, [(B, 2, 6)], None, 1),
    ("BinaryCrossEntropyLoss", {}, [(B, 1), (B, 1)], [X, LABEL], 1),
    ("CrossEntropyLoss", {}, [(B, 2), (B, 1)], [X, LABEL], 1),
    ("MultiCrossEntropyLoss", {"target_weight": [1.0, 0.5, 2.0]}, [(B, 3), (B, 3)],
     [X, LABEL], 1),
    ("MatrixMultiply", {}, [(B, 3, 4), (B, 4, 2)], None, 1),
    ("MatrixMultiply", {}, [(B, 2, 3, 4), (B, 2, 4, 3)], None, 1),
    ("MatrixMultiply", {}, [(4, 3), (3, 5)], None, 1),
    ("MatrixMultiply", {}, [(4, 3), (3, 2, 5)], None, 1),
    ("MLP", {"mlp_param": {"num_outputs": [6, 3], "activations": ["Relu", "None"],
                           "biases": [True, False]}}, [(B, 5)], None, 1),
    ("MLP", {"mlp_param": {"num_outputs": [6, 2]}}, [(B, 5)], None, 1),
    ("MultiCross", {"mc_param": {"num_layers": 2, "projection_dim": 0}}, [(B, 5)], None, 1),
    ("MultiCross", {"mc_param": {"num_layers": 2, "projection_dim": 2}}, [(B, 5)], None, 1),
    (MHA, {"num_attention_heads": 2}, [(B, 3, 4)] * 3, None, 1),
    (MHA, {"num_attention_heads": 2}, [(B, 3, 4), (B, 5, 4), (B, 5, 4), (B, 1, 3, 5)],
     [X, X, X, MASK], 1),
    (MHA, {"num_attention_heads": 2, "transpose_b": True}, [(B, 3, 4)] * 3, None, 2),
    (MHA, {"num_attention_heads": 2, "transpose_b": False}, [(B, 2, 3, 5), (B, 2, 5, 4)], None, 1),
    (MHA, {"num_attention_heads": 2, "transpose_b": True}, [(B, 2, 3, 4), (B, 2, 5, 4)], None, 1),
    (MHA, {}, [(B, 2, 3, 4), (B, 2, 5, 4)], None, 1),
    (MHA, {"num_attention_heads": 2}, [(B, 3, 4), (B, 3, 4)], None, 1),
    ("PReLU_Dice", {"prelu_dice_param": {"alpha": 0.2, "eps": 1e-8}}, [(B, 4)], None, 1),
    ("ReduceSum", {"axis": 1}, [(B, 3, 4)], None, 1),
    ("ReduceSum", {"axis": 0}, [(B, 3)], None, 1),
    ("ReduceMean", {"axis": 2}, [(B, 3, 4)], None, 1),
    ("Reshape", {"leading_dim": 6, "time_step": 0}, [(B, 2, 3)], None, 1),
    ("Reshape", {"leading_dim": 2, "time_step": 3}, [(B, 6)], None, 1),
    ("Reshape", {"selected": [2, 0]}, [(B, 3, 4)], None, 1),
    ("Scale", {"scale_param": {"axis": 0, "factor": 3.0}}, [(B, 4)], None, 1),
    ("Scale", {"scale_param": {"axis": 1, "factor": 2.0}}, [(B, 4)], None, 1),
    ("Select", {"dim": 1, "index": [0, 2, 2]}, [(B, 3, 4)], None, 1),
    ("SequenceMask", {"max_sequence_len": 5}, [(B, 1)], [LENGTH], 1),
    ("SequenceMask", {"max_sequence_len_from": 3, "max_sequence_len_to": 4}, [(B, 1), (B, 1)],
     [LENGTH, LENGTH], 1),
    ("Slice", {"ranges": [[0, 2], [1, 4]]}, [(B, 5)], None, 2),
    ("Softmax", {}, [(B, 3, 4)], None, 1),
    ("Softmax", {"factor": 0.5}, [(B, 2, 3, 4), (B, 1, 3, 4)], [X, MASK], 1),
    ("Softmax", {"factor": 0.5}, [(B, 2, 3, 4), (B, 1, 1, 4)], [X, MASK], 1),
    ("WeightMultiply", {"weight_dims": [3, 4]}, [(B, 3)], None, 1),
]


def ids():
    seen: dict[str, int] = {}
    out = []
    for c in CASES:
        seen[c[0]] = seen.get(c[0], 0) + 1
        out.append(f"{c[0]}-{seen[c[0]]}")
    return out


def build(case, seed=0):
    """(handler, layer, numpy inputs, kinds) with random weights in HugeCTR's layout."""
    layer_type, block, shapes, kinds, n_tops = case
    handler, layer = make_layer(layer_type, block, shapes, n_tops=n_tops)
    rng = np.random.default_rng(seed)
    for spec in handler.weight_specs(layer):
        layer.weights[spec.name] = (rng.standard_normal(spec.shape) * 0.5).astype(np.float32)
    for spec in handler.ntp_specs(layer):
        lo, hi = (0.5, 1.5) if spec.name == "var" else (-0.2, 0.2)
        layer.weights[spec.name] = rng.uniform(lo, hi, spec.shape).astype(np.float32)
    kinds = kinds or [X] * len(shapes)
    xs = []
    for shape, kind in zip(shapes, kinds):
        s = concrete_shape(shape, BATCH)
        if kind == MASK:
            xs.append((rng.random(s) < 0.7).astype(np.float32))
        elif kind == LENGTH:
            xs.append(rng.uniform(-1, 7, s).astype(np.float32))
        elif kind == LABEL:
            xs.append(rng.integers(0, 2, s).astype(np.float32))
        else:
            xs.append(rng.standard_normal(s).astype(np.float32))
    return handler, layer, xs, kinds

"""Math shared by several handlers: sigmoid and HugeCTR's masked softmax, each once in numpy
(reference) and once as ONNX nodes."""

from __future__ import annotations

import numpy as np

MASK_PENALTY = 10000.0  # HugeCTR's masked softmax: z = x - 10000·(1 - mask) ...
MASK_EPS = 1e-6  # ... then exp(z - max) / (sum + 1e-6)


def sigmoid(x) -> np.ndarray:
    """1 / (1 + e^-x) in float64 (callers cast to their output type); e^-x overflowing to
    inf for x < -709 gives the right limit, 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def masked_softmax(x, mask, factor: float = 1.0) -> np.ndarray:
    """HugeCTR's ``mask_softmax_fprop_kernel`` (masked_softmax_layer.cu), which the fused
    MultiHeadAttention also runs on its float32 scores: the logits
    ``z = x*factor - (1 - mask)*10000`` are formed in float32, and near -10000 float32 is
    ~1e-3 apart, which shows in fully masked rows; exp and sums here are float64."""
    f32 = np.float32
    penalty = (f32(1) - np.asarray(mask, f32)) * f32(MASK_PENALTY)
    z = (np.asarray(x, f32) * f32(factor) - penalty).astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / (e.sum(axis=-1, keepdims=True) + MASK_EPS)


def emit_masked_softmax(g, x: str, mask: str, *, factor: float | None = None,
                        out: str | None = None, hint: str = "masked_softmax") -> str:
    """ONNX nodes of ``masked_softmax(factor·x - MASK_PENALTY·(1 - mask))``."""
    if factor is not None:
        x = g.node("Mul", [x, g.const(np.float32(factor))], hint=f"{hint}/scaled")
    keep_out = g.node("Sub", [g.const(np.float32(1)), mask], hint=f"{hint}/mask_off")
    penalty = g.node("Mul", [keep_out, g.const(np.float32(MASK_PENALTY))], hint=f"{hint}/penalty")
    z = g.node("Sub", [x, penalty], hint=f"{hint}/logits")
    shifted = g.node("Sub", [z, g.reduce("ReduceMax", z, [-1])], hint=f"{hint}/shifted")
    e = g.node("Exp", [shifted], hint=f"{hint}/exp")
    total = g.node("Add", [g.reduce("ReduceSum", e, [-1]), g.const(np.float32(MASK_EPS))],
                   hint=f"{hint}/denominator")
    return g.node("Div", [e, total], out, hint=f"{hint}/probs")
